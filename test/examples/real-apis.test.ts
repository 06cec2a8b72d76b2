import { cpSync, mkdirSync, readFileSync, writeFileSync } from "node:fs";
import path from "node:path";
import { fileURLToPath } from "node:url";
import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it } from "vitest";
import { runCli } from "../cli/helpers.js";
import { tempDir } from "../config/helpers.js";
import { readCsv, readJsonl, readSqlite } from "../demo/read-outputs.js";
import {
  albums,
  CHARGE_COUNT,
  CREDENTIALS,
  charges,
  type FakeApis,
  ISSUES_DISABLED,
  issuesOf,
  MESSAGE_COUNT,
  messages,
  POKEMON_COUNT,
  PROJECT_COUNT,
  pokemonName,
  REPO_NAMES,
  startFakeApis,
  tracksOf,
} from "./fake-apis.js";

/**
 * The example pipelines of pipelines/, run as written against local fakes of their APIs (the
 * documented response shapes, see fake-apis.ts): only the API origins are pointed at 127.0.0.1.
 * Checks that endpoints, auth, pagination, JSONPaths and schemas fit together.
 */
const REPO = fileURLToPath(new URL("../../", import.meta.url));

let api: FakeApis;
beforeAll(async () => {
  api = await startFakeApis();
});
afterAll(async () => {
  await api.close();
});

let dir: string;
let cleanup: () => void;
beforeEach(() => {
  ({ dir, cleanup } = tempDir("pipelines-examples-"));
  cpSync(path.join(REPO, "schemas"), path.join(dir, "schemas"), { recursive: true });
  mkdirSync(path.join(dir, "pipelines"));
  api.requests.length = 0;
});
afterEach(() => cleanup());

const ORIGINS: Record<string, string> = {
  "https://api.stripe.com": "/stripe",
  "https://slack.com": "/slack",
  "https://pokeapi.co": "/pokeapi",
  "https://api.spotify.com": "/spotify",
  "https://accounts.spotify.com": "/spotify-accounts",
  "https://api.github.com": "/github",
};

/** Copies pipelines/<name>.yaml into the temp project with its API origins on the fake. */
function useExample(name: string): void {
  let text = readFileSync(path.join(REPO, "pipelines", `${name}.yaml`), "utf8");
  const before = text;
  for (const [origin, prefix] of Object.entries(ORIGINS))
    text = text.replace(
      new RegExp(`${origin.replaceAll(".", "\\.")}(?=[/\\s"]|$)`, "gm"),
      `${api.url}${prefix}`,
    );
  if (name !== "jira") expect(text, `${name}.yaml names a known API origin`).not.toBe(before);
  writeFileSync(path.join(dir, "pipelines", `${name}.yaml`), text);
}

const env = (): Record<string, string> => ({ ...CREDENTIALS, JIRA_BASE_URL: `${api.url}/jira` });
const run = (name: string, extraEnv: Record<string, string> = {}) =>
  runCli(["run", name], dir, { ...env(), ...extraEnv });

interface StreamReport {
  name: string;
  status: string;
  records: { seen: number; valid: number; invalid: number; written: number };
  drift: { new_fields: unknown[]; type_changes: unknown[] } | null;
  partitions: { total: number; done: number; failed: { parent_key: string; error: string }[] } | null;
}
const report = (name: string) =>
  JSON.parse(readFileSync(path.join(dir, "reports", name, "latest.json"), "utf8")) as {
    status: string;
    streams: StreamReport[];
  };

/** Every record valid, none dropped, and no drift: the schema describes the records as written. */
function expectClean(s: StreamReport, count: number): void {
  expect(s.status).toBe("ok");
  expect(s.records).toMatchObject({ seen: count, valid: count, invalid: 0, written: count });
  expect(s.drift?.new_fields ?? []).toEqual([]);
  expect(s.drift?.type_changes ?? []).toEqual([]);
}

const seen = (prefix: string) => api.requests.filter((r) => r.path.startsWith(prefix));
const basic = (user: string, password: string) =>
  `Basic ${Buffer.from(`${user}:${password}`).toString("base64")}`;

describe("stripe.yaml: cursor = $.data[-1:].id sent as starting_after", () => {
  it("fetches every charge, page after page, with the secret key as the Basic user name", async () => {
    useExample("stripe");
    const r = await run("stripe");
    expect(r.code, r.stderr).toBe(0);
    expectClean(report("stripe").streams[0], CHARGE_COUNT);

    const reqs = seen("/stripe/v1/charges");
    expect(reqs.map((q) => q.query.starting_after)).toEqual([undefined, charges[99].id, charges[199].id]);
    for (const q of reqs) {
      expect(q.query).toMatchObject({ limit: "100", "created[gte]": "1704067200" });
      expect(q.headers.authorization).toBe(basic(CREDENTIALS.STRIPE_SECRET_KEY, ""));
      expect(q.headers["stripe-version"]).toBe("2024-06-20");
    }

    const rows = readSqlite(path.join(dir, "out", "stripe.db"), "charges");
    expect(rows.map((x) => x.id).sort()).toEqual(charges.map((c) => c.id).sort());
    const card = rows.find((x) => x.id === charges[0].id)!;
    expect(card).toMatchObject({
      amount: charges[0].amount,
      currency: charges[0].currency,
      status: "succeeded",
      payment_method_type: "card",
      card_brand: charges[0].payment_method_details.card?.brand,
      card_last4: charges[0].payment_method_details.card?.last4,
      created: charges[0].created,
    });
    expect(JSON.parse(card.metadata as string)).toEqual(charges[0].metadata);
    const bank = rows.find((x) => String(x.id).startsWith("py_"))!;
    expect(bank).toMatchObject({
      payment_method_type: "us_bank_account",
      card_brand: null,
      card_last4: null,
    });
  });

  it("the next run asks only for charges created since the newest one, minus the lookback", async () => {
    useExample("stripe");
    expect((await run("stripe")).code).toBe(0);
    api.requests.length = 0;
    expect((await run("stripe")).code).toBe(0);
    const newest = Math.max(...charges.map((c) => c.created));
    expect(seen("/stripe/v1/charges").map((q) => q.query["created[gte]"])).toEqual([String(newest - 3600)]);
    expect(report("stripe").streams[0].records.seen).toBe(2);
    expect(readSqlite(path.join(dir, "out", "stripe.db"), "charges")).toHaveLength(CHARGE_COUNT);
  });
});

describe("slack.yaml: cursor in response_metadata, error_path", () => {
  it("fetches every message of the channel with the bot token", async () => {
    useExample("slack");
    const r = await run("slack");
    expect(r.code, r.stderr).toBe(0);
    expectClean(report("slack").streams[0], MESSAGE_COUNT);
    const reqs = seen("/slack/api/conversations.history");
    expect(reqs).toHaveLength(3);
    expect(reqs[0].query).toEqual({ channel: CREDENTIALS.SLACK_CHANNEL_ID, limit: "200", oldest: "0" });
    expect(
      reqs.slice(1).every((q) => q.query.cursor && q.query.channel === CREDENTIALS.SLACK_CHANNEL_ID),
    ).toBe(true);
    expect(reqs.every((q) => q.headers.authorization === `Bearer ${CREDENTIALS.SLACK_BOT_TOKEN}`)).toBe(true);

    const expected = messages.map((m) => {
      const x = m as Record<string, unknown> & { reactions?: { name: string }[]; edited?: { ts: string } };
      return {
        ts: x.ts,
        type: "message",
        subtype: x.subtype ?? null,
        user: x.user ?? null,
        bot_id: x.bot_id ?? null,
        text: x.text,
        thread_ts: x.thread_ts ?? null,
        reply_count: x.reply_count ?? null,
        reactions: (x.reactions ?? []).map((r: { name: string }) => r.name),
        edited_ts: x.edited?.ts ?? null,
      };
    });
    const byTs = (a: Record<string, unknown>, b: Record<string, unknown>) =>
      String(a.ts).localeCompare(String(b.ts));
    expect(readJsonl(path.join(dir, "out", "slack", "messages.jsonl")).sort(byTs)).toEqual(
      expected.sort(byTs),
    );
  });

  it("a Slack error (200 with ok: false) fails the run with the API's error", async () => {
    useExample("slack");
    const r = await run("slack", { SLACK_CHANNEL_ID: "C0NOSUCHCHAN" });
    expect(r.code).toBe(1);
    expect(r.stderr).toContain("channel_not_found");
  });
});

describe("jira.yaml: offset with startAt and maxResults", () => {
  it("fetches every project with Basic auth (e-mail and API token)", async () => {
    useExample("jira");
    const r = await run("jira");
    expect(r.code, r.stderr).toBe(0);
    expectClean(report("jira").streams[0], PROJECT_COUNT);
    const reqs = seen("/jira/rest/api/3/project/search");
    expect(reqs.map((q) => Number(q.query.startAt)).sort((a, b) => a - b)).toEqual([0, 50, 100]);
    for (const q of reqs) {
      expect(q.query).toMatchObject({ maxResults: "50", expand: "description,lead,insight", orderBy: "key" });
      expect(q.headers.authorization).toBe(basic(CREDENTIALS.JIRA_EMAIL, CREDENTIALS.JIRA_API_TOKEN));
    }
    const rows = readCsv(path.join(dir, "out", "jira", "projects.csv"));
    expect(rows.map((x) => x.key)).toEqual(
      Array.from({ length: PROJECT_COUNT }, (_, k) => `P${String(k + 1).padStart(3, "0")}`),
    );
    expect(rows[0]).toMatchObject({
      id: "10001",
      name: "Project 1",
      description: "Project number 1, with, commas",
      lead: "Lead 1",
      category: "",
      issue_count: "13",
      project_type: "service_desk",
    });
    expect(rows[3].category).toBe("Platform");
  });
});

describe("pokeapi.yaml: next URL", () => {
  it("follows $.next to the end", async () => {
    useExample("pokeapi");
    const r = await run("pokeapi");
    expect(r.code, r.stderr).toBe(0);
    expectClean(report("pokeapi").streams[0], POKEMON_COUNT);
    expect(seen("/pokeapi/api/v2/pokemon").map((q) => q.query)).toEqual([
      { limit: "100" },
      { offset: "100", limit: "100" },
    ]);
    const rows = readCsv(path.join(dir, "out", "pokeapi", "pokemon.csv"));
    expect(rows.map((x) => x.name)).toEqual(
      Array.from({ length: POKEMON_COUNT }, (_, k) => pokemonName(k + 1)),
    );
    expect(rows[150].url).toBe("https://pokeapi.co/api/v2/pokemon/151/");
  });
});

describe("spotify.yaml: OAuth2 client credentials, next URL, offset per album", () => {
  it("gets one token with HTTP Basic client auth, then every album and the tracks of each", async () => {
    useExample("spotify");
    const r = await run("spotify");
    expect(r.code, r.stderr).toBe(0);
    const [releases, tracks] = report("spotify").streams;
    const trackCount = albums.reduce((n, _, k) => n + tracksOf(k).length, 0);
    expectClean(releases, albums.length);
    expectClean(tracks, trackCount);

    const tokens = seen("/spotify-accounts/api/token");
    expect(tokens).toHaveLength(1);
    expect(tokens[0].method).toBe("POST");
    expect(tokens[0].headers.authorization).toBe(
      basic(CREDENTIALS.SPOTIFY_CLIENT_ID, CREDENTIALS.SPOTIFY_CLIENT_SECRET),
    );
    const form = new URLSearchParams(tokens[0].body);
    expect(form.get("grant_type")).toBe("client_credentials");
    expect(form.has("client_secret")).toBe(false);

    const apiReqs = seen("/spotify/v1/");
    expect(apiReqs.every((q) => q.headers.authorization === "Bearer BQD1FakeSpotifyAccessToken")).toBe(true);
    expect(seen("/spotify/v1/browse/new-releases").map((q) => q.query.offset)).toEqual([undefined, "5"]);
    expect(seen(`/spotify/v1/albums/${albums[0].id}/tracks`).map((q) => q.query)).toEqual([
      { limit: "50", offset: "0" },
      { limit: "50", offset: "50" },
    ]);

    const db = path.join(dir, "out", "spotify.db");
    const albumRows = readSqlite(db, "new_releases");
    expect(albumRows.map((a) => a.id)).toEqual(albums.map((a) => a.id));
    expect(albumRows[5].image_url).toBeNull();
    expect(JSON.parse(albumRows[0].artists as string)).toEqual(["Artist 1"]);
    const trackRows = readSqlite(db, "album_tracks");
    expect(trackRows).toHaveLength(trackCount);
    expect(trackRows.filter((t) => t.album_id === albums[0].id)).toHaveLength(60);
  });
});

describe("github-org.yaml: repos of an org, then the issues of each", () => {
  it("follows Link headers for both streams and skips the repository with issues turned off", async () => {
    useExample("github-org");
    const r = await run("github-org");
    expect(r.code, r.stderr).toBe(0);
    const [repos, issues] = report("github-org").streams;
    expectClean(repos, REPO_NAMES.length);
    const withIssues = REPO_NAMES.filter((n) => n !== ISSUES_DISABLED);
    const issueCount = withIssues.reduce((n, repo) => n + issuesOf(repo).length, 0);
    expect(issues.records).toMatchObject({ seen: issueCount, invalid: 0, written: issueCount });
    expect(issues.drift?.new_fields ?? []).toEqual([]);
    expect(issues.drift?.type_changes ?? []).toEqual([]);
    expect(issues.partitions?.failed).toHaveLength(1);
    expect(issues.partitions?.failed[0].error).toContain("410");

    expect(seen("/github/orgs/acme/repos")).toHaveLength(3);
    const issueReqs = seen("/github/repos/");
    expect(issueReqs.every((q) => q.query.since === "2024-01-01T00:00:00Z" && q.query.state === "all")).toBe(
      true,
    );
    expect(api.requests.every((q) => q.headers.authorization === `Bearer ${CREDENTIALS.GITHUB_TOKEN}`)).toBe(
      true,
    );

    const db = path.join(dir, "out", "github-org.db");
    expect(readSqlite(db, "repos").map((x) => x.full_name)).toEqual(REPO_NAMES.map((n) => `acme/${n}`));
    const rows = readSqlite(db, "issues");
    expect(rows).toHaveLength(issueCount);
    expect(new Set(rows.map((x) => x.repo))).toEqual(new Set(withIssues.map((n) => `acme/${n}`)));
    const prs = rows.filter((x) => x.pull_request !== null);
    expect(prs.length).toBeGreaterThan(0);
    expect(prs.every((x) => String(x.pull_request).includes("/pulls/"))).toBe(true);
  });
});
