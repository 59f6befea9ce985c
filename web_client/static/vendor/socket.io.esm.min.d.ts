// Types of the vendored socket.io client for the type check of the pages (web_client/tsconfig.json).
export function io(uri?: string, opts?: Record<string, unknown>): any;
