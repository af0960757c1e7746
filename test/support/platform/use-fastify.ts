// Jest setup of the `fastify` project (jest.config.js): the behaviour suites' apps run on Fastify.
process.env.NSS_TEST_PLATFORM = 'fastify';
