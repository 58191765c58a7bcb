/** Sources the tests' own git servers serve from (loopback http), besides GitHub repositories' own URLs (SLIPWAY_SOURCE_ALLOW). */
export const LOCAL_SOURCES = 'github.com,http://127.0.0.1:';
