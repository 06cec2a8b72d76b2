/** The records of the demo API: fixed, seeded, with a few that break their schema on purpose. */

/** A seeded generator: the same data (and the same flaky requests) in every demo. */
export function rng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

const day = (i: number) =>
  new Date(Date.UTC(2025, 0, 1) + i * 3_600_000 * 7).toISOString().replace(/\.000Z$/, "Z");
const LABELS = ["bug", "feature", "docs", "good first issue", "performance"];
const USERS = ["ada", "grace", "linus", "margaret", "ken", "barbara", "dennis"];

export const issues = Array.from({ length: 180 }, (_, k) => {
  const i = k + 1;
  const r = rng(i);
  return {
    id: 1_000_000 + i,
    number: i,
    title:
      i % 47 === 0
        ? null
        : `Widget issue #${i}: ${["crash on save", "slow export", "typo in docs", "add dark mode"][i % 4]}`,
    state: r() < 0.3 ? "closed" : "open",
    user: { login: USERS[i % USERS.length], id: 500 + (i % USERS.length) },
    labels: LABELS.filter((_, j) => (i >> j) & 1 && j < 3).map((name) => ({ name })),
    comments: Math.floor(r() * 12),
    created_at: day(i),
    updated_at: day(i + 30),
  };
});

export const messages = Array.from({ length: 150 }, (_, k) => ({
  ts: `${1735689600 + k * 97}.000${String(k).padStart(3, "0")}`,
  user: `U0${(k % 6) + 1}DEMO`,
  text: k % 10 === 0 ? `Deploy ${k / 10} finished ✅` : `message ${k + 1}`,
  reply_count: k % 7 === 0 ? 2 : 0,
  ...(k % 40 === 39 ? { edited: { user: "U01DEMO", ts: "1735700000.000100" } } : {}),
}));

export const orders = Array.from({ length: 420 }, (_, k) => {
  const i = k + 1;
  const r = rng(1000 + i);
  return {
    order_id: `ORD-${String(i).padStart(5, "0")}`,
    customer: { id: 300 + (i % 57), country: ["DE", "FR", "US", "JP", "BR"][i % 5] },
    // Drift: a few totals come back as strings, as after a real upstream change.
    total: i % 53 === 0 ? (Math.round(r() * 50000) / 100).toFixed(2) : Math.round(r() * 50000) / 100,
    currency: "EUR",
    status: ["paid", "shipped", "refunded"][i % 3],
    placed_at: day(i),
  };
});

const POKEMON = [
  "bulbasaur",
  "ivysaur",
  "venusaur",
  "charmander",
  "charmeleon",
  "charizard",
  "squirtle",
  "wartortle",
  "blastoise",
  "caterpie",
  "metapod",
  "butterfree",
  "weedle",
  "kakuna",
  "beedrill",
  "pidgey",
];
export const pokemon = Array.from({ length: 151 }, (_, k) => ({
  name: POKEMON[k] ?? `pokemon-${k + 1}`,
  id: k + 1,
}));

export const contacts = Array.from({ length: 95 }, (_, k) => ({
  id: `c_${k + 1}`,
  name: `Contact ${k + 1}`,
  email: k % 31 === 30 ? "not-an-email" : `contact${k + 1}@example.com`,
  company: k % 4 === 0 ? null : `Company ${k % 9}`,
  created: day(k),
}));
