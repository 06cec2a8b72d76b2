/**
 * A rate budget slot counts from the moment its request is written on the socket (undici's
 * onRequestSent, HttpClient.send's `onSent`), not from the response and not from when the slot
 * was taken: real client, executor and budget against a loopback server that logs arrivals and
 * answers in order. No assertion here measures a duration: they compare orders of events and
 * count requests per sliding second.
 */
import { afterEach, expect, it } from "vitest";
import { HttpClient } from "../../src/http/client.js";
import { RateBudget, type RequestBudget } from "../../src/http/rate-budget.js";
import { TransportError } from "../../src/shared/errors.js";
import {
  busiestSecond,
  busy,
  expectCountedFromTheWrite,
  type LogServer,
  logServer,
  sendAtFivePerSecond,
} from "./budget-session.js";

let api: LogServer | null = null;
afterEach(async () => {
  await api?.close();
  api = null;
});

const clientOptions = { timeoutMs: 5000, maxResponseBytes: 1 << 20, connections: 2, userAgent: "t" };

it("HttpClient.send calls onSent once, after the request is written and before its answer", async () => {
  api = await logServer(200);
  const client = new HttpClient(clientOptions);
  const server = api;
  let sent = 0;
  try {
    const res = await client.send({ method: "GET", url: `${api.url}/1`, headers: {} }, undefined, () => {
      sent++;
      server.events.push("sent 1");
    });
    expect(res.status).toBe(200);
  } finally {
    await client.close();
  }
  expect(sent).toBe(1);
  expect(api.events).toEqual(["sent 1", "arrived 1", "answered 1"]);
});

it("HttpClient.send never calls onSent for a request that never reached a socket", async () => {
  api = await logServer(0);
  const url = api.url;
  await api.close(); // nothing listens there any more: the connection is refused
  api = null;
  const client = new HttpClient(clientOptions);
  let sent = 0;
  try {
    const failed = await client
      .send({ method: "GET", url: `${url}/1`, headers: {} }, undefined, () => sent++)
      .catch((e: unknown) => e);
    expect(failed).toBeInstanceOf(TransportError);
  } finally {
    await client.close();
  }
  expect(sent).toBe(0);
});

it("at 5 requests/s the 6th request goes out a second after the 1st was written, not a second after its answer", async () => {
  // The 1st is answered 600 ms after it arrived, the 2nd 1.3 s after. From the write, the 6th
  // goes out at about 1 s, before the 2nd answer; from the 1st answer, at 1.6 s, after it.
  api = await logServer((n) => (n === 1 ? 600 : 1300));
  await sendAtFivePerSecond(api, 6);
  expectCountedFromTheWrite(api);
});

it("requests held between their slot and their write (a busy event loop) still never make 6 in a second", async () => {
  api = await logServer(20);
  // The real budget; once it has given out the 5th slot the event loop is busy for 1.2 s, before
  // any of the 5 requests is written (the connections are not even open yet). Counted from the
  // slot, the next 5 would go out at 1 s, right with the first 5.
  const real = new RateBudget({
    perSecond: 5,
    perMinute: null,
    perHour: null,
    perDay: null,
    remainingHeader: null,
    resetHeader: null,
  });
  const budget: RequestBudget = {
    begin: async (signal) => {
      const ticket = await real.begin(signal);
      if (++given === 5) busy(1200);
      return ticket;
    },
    pauseUntil: (until) => real.pauseUntil(until),
  };
  let given = 0;
  await sendAtFivePerSecond(api, 10, budget);
  expect(given).toBe(10);
  expect(api.arrivals).toHaveLength(10);
  expect(busiestSecond(api.arrivals)).toBeLessThanOrEqual(5);
});
