import { expect, test } from "@playwright/test";
import { hydrated, watchConsole } from "./support";

test("the dashboard is rendered on the server with its data", async ({ request }) => {
  const html = await (await request.get("/")).text();
  expect(html).toContain("Dashboard");
  expect(html).toContain('data-metric="requests"');
  // No master key in this run: the console says so on every page.
  expect(html).toContain('data-open-gateway="true"');
});

test("the shell hydrates and the theme switch reacts", async ({ page }) => {
  const errors = watchConsole(page);
  await page.goto("/");
  await hydrated(page);
  const html = page.locator("html");
  const toggle = page.getByRole("button", { name: /Switch to (dark|light) theme/ });
  const before = await html.getAttribute("data-theme");
  await toggle.click();
  await expect(html).not.toHaveAttribute("data-theme", before ?? "");
  const after = await html.getAttribute("data-theme");
  await page.reload();
  await hydrated(page);
  await expect(html).toHaveAttribute("data-theme", after ?? "");
  expect(errors).toEqual([]);
});

test("the window switch reloads totals without a page load", async ({ page }) => {
  await page.goto("/");
  await hydrated(page);
  const week = page.getByRole("button", { name: "7d" });
  await week.click();
  await expect(week).toHaveAttribute("aria-pressed", "true");
  await expect(page.locator('[data-metric="requests"]')).toBeVisible();
});

test("dashboard numbers change after traffic", async ({ page, request }) => {
  await page.goto("/");
  await hydrated(page);
  const tile = page.locator('[data-metric="requests"] .tile-value');
  const before = Number(await tile.textContent());
  for (let i = 0; i < 3; i++) {
    const r = await request.post("/v1/chat/completions", {
      data: { model: "gpt-4o-mini", messages: [{ role: "user", content: "hi" }] },
    });
    expect(r.status()).toBe(200);
  }
  await expect(tile).toHaveText(String(before + 3), { timeout: 15_000 });
});

test("navigation to the system page stays in the app", async ({ page }) => {
  await page.goto("/");
  await hydrated(page);
  await page.getByRole("link", { name: "System" }).click();
  await expect(page).toHaveURL(/\/system$/);
  await expect(page.getByRole("heading", { name: "System" })).toBeVisible();
  await expect(page.locator('[data-fact="store"]')).toContainText("embedded");
  await expect(page.locator("pre.config")).toContainText("********");
  await expect(page.locator("pre.config")).not.toContainText("sk-e2e-openai");
});
