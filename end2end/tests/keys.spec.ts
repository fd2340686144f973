import { expect, test, type APIRequestContext, type Page } from "@playwright/test";
import { hydrated, watchConsole } from "./support";

// Virtual keys from the console: the secret is shown once, the key is enforced on /v1, and
// rotating or revoking it stops the old secret at once.

async function chat(request: APIRequestContext, secret: string) {
  const r = await request.post("/v1/chat/completions", {
    headers: { Authorization: "Bearer " + secret },
    data: { model: "gpt-4o-mini", messages: [{ role: "user", content: "hi" }] },
  });
  return r.status();
}

async function shownSecret(page: Page) {
  const value = page.locator("[data-secret] [data-testid='secret']");
  await expect(value).toHaveText(/^sk-llmb-[0-9a-f]+$/);
  return (await value.textContent())!.trim();
}

test("a key is created with a rate limit, rotated and revoked", async ({ page, request }) => {
  const errors = watchConsole(page);
  const name = `e2e-key-${Date.now()}`;
  await page.goto("/keys");
  await hydrated(page);
  await page.getByLabel("Name", { exact: true }).fill(name);
  await page.getByLabel("Requests/min", { exact: true }).fill("1");
  await page.getByRole("button", { name: "Create key" }).click();

  const box = page.locator("[data-secret]");
  await expect(box).toContainText(name);
  await expect(box).toContainText("it will not be shown again");
  const secret = await shownSecret(page);
  // The form is cleared for the next key.
  await expect(page.getByLabel("Name", { exact: true })).toHaveValue("");

  const row = page.locator("table.keys tbody tr", { hasText: name });
  const prefix = secret.slice(0, "sk-llmb-".length + 4);
  await expect(row).toContainText(prefix);
  await expect(row.locator('[data-col="rpm"]')).toHaveText("1");
  await expect(row).not.toContainText(secret);

  expect(await chat(request, secret)).toBe(200);
  expect(await chat(request, secret)).toBe(429);

  // After a reload the secret is gone for good: not in the page, not in the server's HTML.
  await page.reload();
  await hydrated(page);
  await expect(box).toHaveCount(0);
  await expect(row).toContainText(prefix);
  expect(await page.content()).not.toContain(secret);
  const html = await (await request.get("/keys")).text();
  expect(html).toContain(prefix);
  expect(html).not.toContain(secret);

  // The admitted request shows in the key's 24-hour traffic (stats flush every 200 ms).
  await expect(async () => {
    await page.reload();
    await hydrated(page);
    await expect(row.locator('[data-col="requests"]')).not.toHaveText("0", { timeout: 1_000 });
  }).toPass({ timeout: 15_000 });

  // Rotating asks first too; cancelling keeps the secret.
  await row.getByRole("button", { name: /^Rotate/ }).click();
  const rotateDialog = page.getByRole("dialog", { name: `Rotate “${name}”?` });
  await expect(rotateDialog).toBeVisible();
  await rotateDialog.getByRole("button", { name: "Cancel" }).click();
  await expect(rotateDialog).toBeHidden();
  expect([200, 429]).toContain(await chat(request, secret));
  await row.getByRole("button", { name: /^Rotate/ }).click();
  await rotateDialog.getByRole("button", { name: "Rotate", exact: true }).click();
  await expect(page.locator("[data-secret] [data-testid='secret']")).not.toHaveText(secret);
  const rotated = await shownSecret(page);
  expect(rotated).not.toBe(secret);
  expect(await chat(request, secret)).toBe(401);
  // The same key with a new secret: accepted, under the same rate limit.
  expect([200, 429]).toContain(await chat(request, rotated));
  await expect(row).toContainText(rotated.slice(0, "sk-llmb-".length + 4));

  // Revoking asks first; cancelling keeps the key.
  await row.getByRole("button", { name: /^Revoke/ }).click();
  const dialog = page.getByRole("dialog", { name: `Revoke “${name}”?` });
  await expect(dialog).toBeVisible();
  await dialog.getByRole("button", { name: "Cancel" }).click();
  await expect(dialog).toBeHidden();
  await expect(row).toBeVisible();

  await row.getByRole("button", { name: /^Revoke/ }).click();
  await dialog.getByRole("button", { name: "Revoke", exact: true }).click();
  await expect(row).toHaveCount(0);
  await expect(box).toHaveCount(0);
  expect(await chat(request, rotated)).toBe(401);
  expect(errors).toEqual([]);
});

test("a key the gateway refuses shows why", async ({ page }) => {
  await page.goto("/keys");
  await hydrated(page);
  await page.getByLabel("Name", { exact: true }).fill(`e2e-expired-${Date.now()}`);
  await page.getByLabel("Expires on (UTC)").fill("2000-01-01");
  await page.getByRole("button", { name: "Create key" }).click();
  await expect(page.locator(".error-note")).toContainText("Cannot create the key: `expires_at` is in the past");
  await expect(page.locator("[data-secret]")).toHaveCount(0);
});

test("the keys page fits a phone with a key listed and its secret shown", async ({ page }) => {
  await page.setViewportSize({ width: 390, height: 844 });
  const name = `e2e-phone-${Date.now()}`;
  await page.goto("/keys");
  await hydrated(page);
  await page.getByLabel("Name", { exact: true }).fill(name);
  await page.getByLabel("Models", { exact: true }).fill("gpt-4o-mini, claude-sonnet-4-5, gemini-2.5-flash");
  await page.getByLabel("Budget (USD)").fill("2.5");
  await page.getByLabel("Budget period").selectOption("day");
  await page.getByRole("button", { name: "Create key" }).click();
  await shownSecret(page);
  const row = page.locator("table.keys tbody tr", { hasText: name });
  await expect(row.locator('[data-col="budget"]')).toHaveText("$2.50 / day");
  await expect(row).toContainText("claude-sonnet-4-5");
  const overflow = await page.evaluate(
    () => document.documentElement.scrollWidth - document.documentElement.clientWidth,
  );
  expect(overflow).toBeLessThanOrEqual(0);
  await page.screenshot({ path: "screenshots/keys-secret-390.png", fullPage: true });

  await row.getByRole("button", { name: /^Revoke/ }).click();
  await page.getByRole("dialog").getByRole("button", { name: "Revoke", exact: true }).click();
  await expect(row).toHaveCount(0);
});
