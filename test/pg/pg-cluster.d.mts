export const PW_USER: string;
export const PW_PASSWORD: string;
export function findPgBin(): string;
export interface Cluster {
  port: number;
  dir: string;
  adminUrl: string;
  pwUrl: string;
  stop(): void;
}
export function startCluster(): Promise<Cluster>;
export function createDatabase(adminUrl: string, name: string): Promise<string>;
