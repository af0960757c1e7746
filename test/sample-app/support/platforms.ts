/**
 * The platforms the sample app runs on (`HTTP_ADAPTER`): the sample-app specs run their suites once per
 * platform with `describe.each(SAMPLE_APP_PLATFORMS)`, in one Jest process (one build, one browser).
 */
export const SAMPLE_APP_PLATFORMS = ['express', 'fastify'] as const;

export type SampleAppPlatform = (typeof SAMPLE_APP_PLATFORMS)[number];
