import { expect, test, type Page } from "@playwright/test";
import { hydrated, watchConsole } from "./support";

// Every console page: its data is in the server-rendered HTML, it hydrates without console errors,
// nothing overflows horizontally on a phone or a desktop, and the language switch works.

// Page HTML is long: report only the missing piece when a check fails.
function has(html: string, needle: string | RegExp) {
  const found = typeof needle === "string" ? html.includes(needle) : needle.test(html);
  expect(found, `the HTML should contain ${needle}`).toBe(true);
}

function lacks(html: string, needle: string) {
  expect(html.includes(needle), `the HTML should not contain ${needle}`).toBe(false);
}

async function chat(page: Page, model: string) {
  const r = await page.request.post("/v1/chat/completions", {
    data: { model, messages: [{ role: "user", content: "hi" }] },
  });
  return r.status();
}

test("every page is server-rendered with its data", async ({ page, request }) => {
  expect(await chat(page, "gpt-4o-mini")).toBe(200);
  // Stats are flushed every 200 ms in the test gateway.
  await expect
    .poll(async () => (await (await request.get("/api/requests?model=gpt-4o-mini&limit=1")).json()).length)
    .toBe(1);

  const dashboard = await (await request.get("/")).text();
  has(dashboard, 'data-metric="latency-p95"');
  has(dashboard, 'data-chart="requests"');
  has(dashboard, 'data-chart="latency"');
  has(dashboard, 'data-chart="tokens"');
  has(dashboard, 'data-chart="cost"');
  has(dashboard, 'data-usage="model"');
  has(dashboard, "gpt-4o-mini");

  const providers = await (await request.get("/providers")).text();
  for (const name of ["openai", "gemini", "anthropic", "deepseek", "qwen", "moonshot"]) {
    has(providers, `data-provider="${name}"`);
  }
  has(providers, "Google Gemini");
  has(providers, "QWEN_API_KEY");
  has(providers, "Requests/min (1h)");

  const system = await (await request.get("/system")).text();
  has(system, 'data-fact="memory"');
  has(system, /data-fact="memory"[^>]*>[\d.]+ (MiB|GiB)/);
  has(system, /data-fact="cpu"[^>]*>[\d.]+ s/);
  has(system, /data-fact="listen"[^>]*>127\.0\.0\.1:\d+/);
  has(system, "embedded");
  has(system, "********");
  lacks(system, "sk-e2e-openai");

  const tester = await (await request.get("/tester")).text();
  has(tester, '<optgroup label="openai"');
  has(tester, '<optgroup label="gemini"');
  has(tester, "gemini-2.5-flash");
  has(tester, "claude-sonnet-4-5");
  lacks(tester, '<optgroup label="qwen"');

  const requests = await (await request.get("/requests")).text();
  has(requests, /data-count="[1-9]\d*"/);
  has(requests, "gpt-4o-mini");

  const keys = await (await request.get("/keys")).text();
  has(keys, 'data-testid="create-key"');
  has(keys, "Requests/min");
});

test("the page routes answer and unknown ones are 404", async ({ request }) => {
  for (const path of ["/", "/providers", "/tester", "/requests", "/keys", "/teams", "/system"]) {
    expect((await request.get(path)).status(), path).toBe(200);
  }
  expect((await request.get("/no-such-page")).status()).toBe(404);
});

const PAGES: [string, string, string][] = [
  ["/", "dashboard", '[data-chart="requests"]'],
  ["/providers", "providers", ".provider-card"],
  ["/tester", "tester", 'select[name="model"]'],
  ["/requests", "requests", "[data-count]"],
  ["/keys", "keys", '[data-testid="create-key"]'],
  ["/teams", "teams", '[data-usage="user"], [data-usage="team"], .empty'],
  ["/system", "system", 'pre.config'],
];

for (const width of [390, 1280]) {
  test(`nothing overflows at ${width} px`, async ({ page }) => {
    const errors = watchConsole(page);
    await page.setViewportSize({ width, height: width < 600 ? 844 : 800 });
    const overflow = () =>
      page.evaluate(() => document.documentElement.scrollWidth - document.documentElement.clientWidth);
    for (const [path, name, ready] of PAGES) {
      await page.goto(path);
      await hydrated(page);
      await expect(page.locator(ready).first()).toBeVisible();
      expect(await overflow(), `${path} at ${width}px`).toBeLessThanOrEqual(0);
      await page.screenshot({ path: `screenshots/${name}-${width}.png`, fullPage: true });
    }
    await page.goto("/");
    await hydrated(page);
    await page.getByRole("button", { name: "Cost analysis" }).click();
    await expect(page.locator("[data-estimate]")).toBeVisible();
    expect(await overflow(), `cost modal at ${width}px`).toBeLessThanOrEqual(0);
    await page.screenshot({ path: `screenshots/cost-modal-${width}.png` });
    await page.keyboard.press("Escape");
    await page.goto("/");
    await page.evaluate(() => document.documentElement.setAttribute("data-theme", "dark"));
    await page.screenshot({ path: `screenshots/dashboard-dark-${width}.png`, fullPage: true });
    expect(errors).toEqual([]);
  });
}

test("the language switch translates the console and is remembered", async ({ page }) => {
  await page.goto("/providers");
  await hydrated(page);
  await page.getByLabel("Language / 语言").selectOption("zh-CN");
  await expect(page.getByRole("link", { name: "仪表盘" })).toBeVisible();
  await expect(page.getByRole("heading", { level: 1 })).toHaveText("服务商");
  await expect(page.locator("html")).toHaveAttribute("lang", "zh-CN");
  await page.reload();
  await hydrated(page);
  await expect(page.getByRole("heading", { level: 1 })).toHaveText("服务商");
  await page.getByLabel("Language / 语言").selectOption("en");
  await expect(page.getByRole("heading", { level: 1 })).toHaveText("Providers");
});

test("the dashboard charts give a value on hover", async ({ page }) => {
  await page.goto("/");
  await hydrated(page);
  const titles = page.locator('[data-chart="requests"] .hit title');
  await expect(titles).toHaveCount(60);
  await expect(titles.last()).toContainText(/UTC — Requests: \d/);
  await expect(page.locator('[data-usage="model"] tr[data-name="gpt-4o-mini"]')).toBeVisible();
});
