import { expect, test, type APIRequestContext } from "@playwright/test";
import { hydrated } from "./support";

async function lastHour(request: APIRequestContext): Promise<Record<string, number>> {
  const rows: { name: string; requests: number }[] = await (
    await request.get("/api/stats/providers?window=1h")
  ).json();
  return Object.fromEntries(rows.map((r) => [r.name, r.requests]));
}

async function send(request: APIRequestContext, model: string, n: number) {
  for (let i = 0; i < n; i++) {
    const r = await request.post("/v1/chat/completions", {
      data: { model, messages: [{ role: "user", content: "hi" }] },
    });
    expect(r.status()).toBe(200);
  }
}

test("provider cards are sorted by usage and follow the traffic live", async ({ page, request }) => {
  const before = await lastHour(request);
  const busiestOther = Math.max(0, ...Object.entries(before).filter(([n]) => n !== "gemini").map(([, v]) => v));
  await send(request, "gemini-2.5-flash", busiestOther - (before.gemini ?? 0) + 2);

  await page.goto("/providers");
  await hydrated(page);
  const order = () =>
    page.locator(".provider-card").evaluateAll((els) => els.map((e) => (e as HTMLElement).dataset.provider));
  await expect.poll(async () => (await order())[0], { timeout: 15_000 }).toBe("gemini");
  const gemini = page.locator('.provider-card[data-provider="gemini"]');
  await expect(gemini.locator('[data-badge="hot"]')).toBeVisible();
  await expect(gemini.locator('[data-badge="active"]')).toBeVisible();

  // Now OpenAI overtakes Gemini; the page re-sorts without a reload.
  const now = await lastHour(request);
  await send(request, "gpt-4o-mini", (now.gemini ?? 0) - (now.openai ?? 0) + 2);
  await expect.poll(async () => (await order())[0], { timeout: 15_000 }).toBe("openai");
  const list = await order();
  expect(list.indexOf("openai")).toBeLessThan(list.indexOf("gemini"));
  await expect(page.locator('.provider-card[data-provider="openai"] [data-badge="hot"]')).toBeVisible();
  await expect(gemini.locator('[data-badge="hot"]')).toHaveCount(0);

  // A provider without a key says which variable enables it.
  const qwen = page.locator('.provider-card[data-provider="qwen"]');
  await expect(qwen).toContainText("Not configured");
  await expect(qwen).toContainText("QWEN_API_KEY");
});

test("the provider details list models, prices and recent errors", async ({ page, request }) => {
  const failed = await request.post("/v1/chat/completions", {
    data: { model: "openai/gpt-fail400", messages: [{ role: "user", content: "hi" }] },
  });
  expect(failed.status()).toBe(400);
  await page.goto("/providers");
  await hydrated(page);
  await page.locator('.provider-card[data-provider="openai"]').getByRole("button", { name: /Details/ }).click();
  const dialog = page.getByRole("dialog", { name: "OpenAI" });
  await expect(dialog).toBeVisible();
  await expect(dialog.locator('tr[data-model="gpt-4o-mini"]')).toContainText("$0.150");
  await expect(dialog.locator('tr[data-model="gpt-4o-mini"]')).toContainText("$0.600");
  await expect(dialog.locator(".error-list")).toContainText("openai/gpt-fail400", { timeout: 10_000 });
  await page.keyboard.press("Escape");
  await expect(dialog).toBeHidden();
});

test("the live refresh keeps the keyboard focus where it was", async ({ page }) => {
  await page.goto("/providers");
  await hydrated(page);
  const details = page.locator('.provider-card[data-provider="qwen"]').getByRole("button", { name: /Details/ });
  await details.focus();
  await expect(details).toBeFocused();
  // Two refresh periods (5 s each) go by.
  await page.waitForTimeout(11_000);
  await expect(details).toBeFocused();
  await page.keyboard.press("Enter");
  await expect(page.getByRole("dialog", { name: "Qwen (DashScope)" })).toBeVisible();
});
