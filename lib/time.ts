/** Waiting, the one way every layer does it. */
export const sleep = (ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms));
