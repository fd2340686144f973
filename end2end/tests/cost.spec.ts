import { expect, test } from "@playwright/test";
import { hydrated } from "./support";

test("the cost analysis opens from the dashboard and estimates a token volume", async ({ page }) => {
  await page.goto("/");
  await hydrated(page);
  await page.getByRole("button", { name: "Cost analysis" }).click();
  const dialog = page.getByRole("dialog", { name: "Cost analysis" });
  await expect(dialog).toBeVisible();
  await expect(dialog).toBeFocused();

  await dialog.getByLabel("Input tokens").fill("1000000");
  await dialog.getByLabel("Output tokens").fill("1000000");
  await expect(dialog.getByLabel("A token volume")).toBeChecked();
  // gpt-4o-mini: $0.15 + $0.60 per 1M.
  await expect(dialog.locator('tr[data-model="gpt-4o-mini"] [data-cost]')).toHaveText("$0.7500");
  await expect(dialog.locator('tr[data-model="gpt-4o"] [data-cost]')).toHaveText("$12.5000");
  const costs = await dialog
    .locator("[data-estimate] [data-cost]")
    .evaluateAll((els) => els.map((e) => Number((e.textContent ?? "").replace(/[$,]/g, ""))));
  expect(costs.length).toBeGreaterThan(10);
  expect([...costs].sort((a, b) => a - b)).toEqual(costs);

  await dialog.getByLabel("Input tokens").fill("2.5M");
  await dialog.getByLabel("Output tokens").fill("0");
  await expect(dialog.locator('tr[data-model="gpt-4o-mini"] [data-cost]')).toHaveText("$0.3750");

  await page.keyboard.press("Escape");
  await expect(dialog).toBeHidden();
});

test("the cost analysis opens from the providers page with spend per provider, model and key", async ({ page, request }) => {
  const r = await request.post("/v1/chat/completions", {
    data: { model: "deepseek-chat", messages: [{ role: "user", content: "hi" }] },
  });
  expect(r.status()).toBe(200);
  await page.goto("/providers");
  await hydrated(page);
  await page.getByRole("button", { name: "Cost analysis" }).click();
  const dialog = page.getByRole("dialog", { name: "Cost analysis" });
  await dialog.getByRole("button", { name: "1h" }).click();
  await expect(dialog.locator('[data-usage="provider"] tr[data-name="deepseek"]')).toBeVisible({ timeout: 10_000 });
  await expect(dialog.locator('[data-usage="model"] tr[data-name="deepseek-chat"]')).toBeVisible();
  await expect(dialog.locator('[data-usage="key"]')).toBeVisible();
  await expect(dialog.getByLabel("Traffic of the window")).toBeChecked();
  await dialog.getByRole("button", { name: "Close" }).click();
  await expect(dialog).toBeHidden();
});
