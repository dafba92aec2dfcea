/**
 * The cold-start baseline: a handler that does nothing, bundled with the functions' own esbuild
 * options and started under the same runtime client, so what a function adds to the init is its
 * cold start minus this one's.
 */
export const handler = async () => ({});
