import 'reflect-metadata';
import { Module } from '@nestjs/common';
import { ModulesContainer } from '@nestjs/core';
import { Test } from '@nestjs/testing';
import { SessionConfigurationError } from '../errors/configuration.errors.js';
import { SessionAccessor } from '../session/session.accessor.js';
import { SessionModule } from './session.module.js';
import { checkAsyncContextDetection } from './async-context.detector.js';

describe('the startup check of the async-context detection (the one place that reads Nest internals)', () => {
  it('passes on this Nest: @Inject() metadata and the module container are what the detector reads', async () => {
    @Module({ imports: [SessionModule.forRoot()] })
    class AppModule {}
    const ref = await Test.createTestingModule({ imports: [AppModule] }).compile();
    expect(() => checkAsyncContextDetection(ref.get(ModulesContainer), SessionAccessor)).not.toThrow();
    await ref.close();
  });

  it('fails loudly, naming asyncContext, when the container does not list the providers as expected', () => {
    const drifted = () => checkAsyncContextDetection(new ModulesContainer(), SessionAccessor);
    expect(drifted).toThrow(SessionConfigurationError);
    expect(drifted).toThrow(/asyncContext: true/);
  });
});
