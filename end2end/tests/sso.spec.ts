import { expect, test, type Page } from "@playwright/test";
import { hydrated } from "./support";

// Console sign-in through a real OpenID provider (oidc-provider, started by scripts/e2e.sh with a
// gateway configured for it at SSO_URL): an admin lands on the console and may open the Keys page;
// a viewer sees the dashboards but neither the Keys and Teams pages nor their server functions; a user the
// provider gives no role is refused.

const base = process.env.SSO_URL ?? "";
test.skip(!base, "needs the single sign-on gateway scripts/e2e.sh starts (SSO_URL)");

async function signIn(page: Page, login: string) {
  await page.goto(base + "/login");
  await page.getByRole("link", { name: "Sign in with Test IdP" }).click();
  // The provider's own login page (its development interactions: any password).
  await page.locator('input[name="login"]').fill(login);
  await page.locator('input[name="password"]').fill("any password");
  await page.getByRole("button", { name: "Sign-in" }).click();
  // It asks once per user and client for consent.
  await page.getByRole("button", { name: "Continue" }).click();
}

test("an admin signs in through the provider and manages keys", async ({ page }) => {
  await signIn(page, "ann");
  await expect(page).toHaveURL(base + "/");
  await hydrated(page);
  const cookies = await page.context().cookies(base);
  const session = cookies.find((c) => c.name === "llmb_session");
  expect(session?.httpOnly).toBe(true);
  expect(cookies.find((c) => c.name === "llmb_oidc")).toBeUndefined();

  await page.goto(base + "/keys");
  await hydrated(page);
  await expect(page.getByRole("button", { name: "Create key" })).toBeVisible();
  const keys = await page.request.post(base + "/console/fn/get_keys");
  expect(keys.status()).toBe(200);

  // Signing out ends the session.
  await page.goto(base + "/");
  await hydrated(page);
  await page.getByRole("button", { name: "Log out" }).click();
  await expect(page).toHaveURL(base + "/login");
  await page.goto(base + "/");
  await expect(page).toHaveURL(base + "/login");
});

test("a viewer sees the dashboards but not the Keys and Teams pages nor their server functions", async ({ page }) => {
  await signIn(page, "vic");
  await expect(page).toHaveURL(base + "/");
  await hydrated(page);
  await page.goto(base + "/requests");
  await hydrated(page);

  // Keys and Teams (budgets, usage per user) are for admins, however the path is spelled.
  for (const path of ["/keys", "/teams"]) {
    const adminPage = await page.goto(base + path);
    expect(adminPage?.status()).toBe(403);
    await expect(page.locator("body")).toContainText("your role is viewer");
  }
  const teams = await page.request.post(base + "/console/fn/get_teams");
  expect(teams.status()).toBe(403);

  const list = await page.request.post(base + "/console/fn/get_keys");
  expect(list.status()).toBe(403);
  expect(await list.text()).toContain("viewer");
  const create = await page.request.post(base + "/console/fn/create_key", {
    data: { settings: { name: "from-a-viewer" } },
  });
  expect(create.ok()).toBe(false);
  expect(await create.text()).toContain("viewer");

  // Nor the management API, with the session cookie.
  const api = await page.request.get(base + "/api/keys");
  expect(api.status()).toBe(403);
});

test("a user the provider gives no role is refused", async ({ page }) => {
  await signIn(page, "nora");
  await expect(page).toHaveURL(/\/login\/oidc\/callback/);
  await expect(page.getByRole("alert")).toContainText("refused");
  await page.goto(base + "/");
  await expect(page).toHaveURL(base + "/login");
});
