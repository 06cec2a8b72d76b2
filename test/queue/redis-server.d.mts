export function findRedisServer(): string;
export interface RedisServer {
  url: string;
  port: number;
  dir: string;
  stop(): Promise<void>;
}
export function startRedis(): Promise<RedisServer>;
