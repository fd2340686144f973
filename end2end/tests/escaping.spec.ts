import { expect, test, type Page } from "@playwright/test";
import { hydrated } from "./support";

// Everything that came from a request is shown as text: script payloads sent through /v1 and the
// key API never run on any page of the console.

const MARK = `xss${Date.now()}`;
const payloads = [
  `<img src=x onerror="window.__xss='${MARK}-img'">`,
  `<script>window.__xss='${MARK}-script'</script>`,
  `"><svg onload="window.__xss='${MARK}-svg'">`,
  `javascript:window.__xss='${MARK}-href'`,
];

async function noScriptRan(page: Page, path: string) {
  const dialogs: string[] = [];
  page.on("dialog", async (d) => {
    dialogs.push(d.message());
    await d.dismiss();
  });
  await page.goto(path);
  await hydrated(page);
  // Give anything injected a moment to fire (image errors, SVG loads).
  await page.waitForTimeout(300);
  expect(await page.evaluate(() => (window as unknown as { __xss?: string }).__xss)).toBeUndefined();
  expect(dialogs).toEqual([]);
  // No element carries an injected handler.
  expect(await page.locator("[onerror], [onload]").count()).toBe(0);
}

test("script payloads from requests and key names are rendered as text on every page", async ({
  page,
  request,
}) => {
  for (const [i, p] of payloads.entries()) {
    // A key named with the payload.
    const key = await request.post("/api/keys", { data: { name: `${p}-${i}` } });
    expect(key.status()).toBe(201);
    // Unknown models, users and messages carrying it, through /v1.
    const unknown = await request.post("/v1/chat/completions", {
      data: { model: p, messages: [{ role: "user", content: p }] },
    });
    expect([400, 404]).toContain(unknown.status());
    const body = await unknown.json();
    expect(body.error.message).toBeTruthy();
    const ok = await request.post("/v1/chat/completions", {
      headers: { "x-request-id": p.slice(0, 60) },
      data: { model: "gpt-4o-mini", user: p, messages: [{ role: "user", content: p }] },
    });
    expect([200, 400]).toContain(ok.status());
    const bad = await request.post("/v1/chat/completions", { data: { model: "gpt-4o-mini", messages: p } });
    expect(bad.status()).toBe(400);
  }
  // The requests reach the request log (stats flush every 200 ms).
  await expect
    .poll(async () => (await (await request.get("/api/requests?limit=50")).json()).length)
    .toBeGreaterThan(0);

  for (const path of ["/", "/providers", "/requests", "/keys", "/teams", "/system", "/tester"]) {
    await noScriptRan(page, path);
  }
  // The payloads are there, as text.
  await page.goto("/keys");
  await hydrated(page);
  for (const [i, p] of payloads.entries()) {
    await expect(page.locator("table.keys")).toContainText(`${p}-${i}`);
  }
});
