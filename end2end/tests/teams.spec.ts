import { expect, test } from "@playwright/test";
import { hydrated, watchConsole } from "./support";

// The Teams page: a team made with /api/teams, a virtual key in it, and the key's traffic showing
// as the team's usage.

test("a team made through the API shows with its limits and its usage", async ({ page, request }) => {
  const errors = watchConsole(page);
  const team = `e2e-team-${Date.now()}`;
  const created = await request.post("/api/teams", { data: { name: team, rpm: 100, models: ["gpt-4o-mini"] } });
  expect(created.status()).toBe(201);
  const key = await (await request.post("/api/keys", { data: { name: `${team}-key`, team } })).json();
  const chat = await request.post("/v1/chat/completions", {
    headers: { Authorization: "Bearer " + key.key },
    data: { model: "gpt-4o-mini", messages: [{ role: "user", content: "hi" }] },
  });
  expect(chat.status()).toBe(200);
  // A model outside the team's list is refused for its key.
  const refused = await request.post("/v1/chat/completions", {
    headers: { Authorization: "Bearer " + key.key },
    data: { model: "gpt-4o", messages: [{ role: "user", content: "hi" }] },
  });
  expect(refused.status()).toBe(403);

  await page.goto("/teams");
  await hydrated(page);
  const row = page.locator(`table.teams tr[data-team="${team}"]`);
  await expect(row.locator('[data-col="source"]')).toHaveText("api");
  await expect(row.locator('[data-col="rpm"]')).toHaveText("100");
  await expect(row.locator('[data-col="models"]')).toHaveText("gpt-4o-mini");
  // The page refreshes every 5 s; the stats are flushed every 200 ms.
  await expect(page.locator(`[data-usage="team"] tr[data-name="${team}"]`)).toBeVisible({ timeout: 15_000 });
  expect(errors).toEqual([]);

  expect((await request.delete(`/api/teams/${team}`)).status()).toBe(200);
});
