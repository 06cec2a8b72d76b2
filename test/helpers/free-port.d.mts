/** A free TCP port on 127.0.0.1 (free-port.mjs). */
export function freePort(): Promise<number>;
