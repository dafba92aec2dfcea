/**
 * The template `Metadata` key under which every `DownloadFunction` records its folder under
 * `functions/` (`"LargeDownloads::FunctionFolder": "router"`). It is how a reader of the
 * synthesized template (the local stack) knows which handler a function runs. Kept apart from
 * `functions.ts` so that reading it loads no aws-cdk-lib.
 */
export const FUNCTION_FOLDER_METADATA = 'LargeDownloads::FunctionFolder';
