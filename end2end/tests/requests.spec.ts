import { expect, test } from "@playwright/test";
import { hydrated } from "./support";

test("the request log filters by status and shows one record", async ({ page, request }) => {
  const ok = await request.post("/v1/chat/completions", {
    data: { model: "gpt-4o-mini", messages: [{ role: "user", content: "hi" }] },
  });
  expect(ok.status()).toBe(200);
  const failed = await request.post("/v1/chat/completions", {
    data: { model: "openai/gpt-fail400", messages: [{ role: "user", content: "hi" }] },
  });
  expect(failed.status()).toBe(400);

  // The filters live in the URL, so a filtered log is server-rendered too.
  await expect
    .poll(async () => (await (await request.get("/requests?status=error")).text()).includes("openai/gpt-fail400"))
    .toBe(true);

  await page.goto("/requests");
  await hydrated(page);
  await expect(page.locator("table.log")).toContainText("gpt-4o-mini");
  await page.getByLabel("Status").selectOption("error");
  await expect(page).toHaveURL(/status=error/);
  const rows = page.locator("table.log tbody tr");
  // The failed request is the newest, so it heads the unfiltered log as well: wait until
  // the filtered rows have replaced the others rather than checking once.
  await expect
    .poll(() => rows.evaluateAll((els) => els.length > 0 && els.every((e) => e.classList.contains("row-error"))))
    .toBe(true);
  await expect(rows.first()).toContainText("openai/gpt-fail400");

  await rows.first().getByRole("button").click();
  const dialog = page.getByRole("dialog", { name: /^Request / });
  await expect(dialog).toBeVisible();
  await expect(dialog.locator('[data-field="status"]')).toHaveText("400");
  await expect(dialog.locator('[data-field="provider"]')).toHaveText("openai");
  await page.keyboard.press("Escape");
  await expect(dialog).toBeHidden();

  await page.getByLabel("Model").selectOption("gpt-4o-mini");
  await expect(page).toHaveURL(/model=gpt-4o-mini/);
  await expect(page.locator("table.log tbody tr, .empty").first()).toBeVisible();
  await page.getByRole("button", { name: "Clear filters" }).click();
  await expect(page).toHaveURL(/\/requests$/);
  await expect(page.locator("table.log")).toContainText("gpt-4o-mini");
});

test("the request log shows each request's inbound API and Claude Code session", async ({ page, request }) => {
  const messages = await request.post("/v1/messages", {
    headers: { "anthropic-version": "2023-06-01", "x-claude-code-session-id": "e2e-session-42" },
    data: { model: "gpt-4o-mini", max_tokens: 20, messages: [{ role: "user", content: "hi" }] },
  });
  expect(messages.status()).toBe(200);
  const id = messages.headers()["x-request-id"];
  await expect
    .poll(async () => (await (await request.get("/api/requests?session=e2e-session-42")).json()).length)
    .toBe(1);

  await page.goto("/requests");
  await hydrated(page);
  const row = page.locator(`table.log tbody tr[data-request="${id}"]`);
  await expect(row.locator("[data-api]")).toHaveText("messages");
  await row.getByRole("button").click();
  const dialog = page.getByRole("dialog", { name: /^Request / });
  await expect(dialog.locator('[data-field="api"]')).toHaveText("messages");
  await expect(dialog.locator('[data-field="session"]')).toHaveText("e2e-session-42");
});

test("the request log shows Gemini's API and the Responses WebSocket's transport", async ({ page, request }) => {
  const gemini = await request.post("/v1beta/models/gpt-4o-mini:generateContent", {
    data: { contents: [{ role: "user", parts: [{ text: "hi" }] }] },
  });
  expect(gemini.status()).toBe(200);
  const id = gemini.headers()["x-request-id"];
  await page.goto("/requests");
  await hydrated(page);
  // The browser's own WebSocket: one response.create, read up to its end.
  const ended = await page.evaluate(
    () =>
      new Promise<string>((resolve, reject) => {
        const ws = new WebSocket(location.origin.replace(/^http/, "ws") + "/v1/responses");
        ws.onopen = () =>
          ws.send(JSON.stringify({ type: "response.create", model: "gpt-4o-mini", input: "hi", store: false }));
        ws.onmessage = (e) => {
          const event = JSON.parse(e.data);
          if (event.type === "response.completed" || event.type === "error") {
            ws.close();
            resolve(event.type);
          }
        };
        ws.onerror = () => reject(new Error("the socket failed"));
        setTimeout(() => reject(new Error("no response in 10 s")), 10000);
      }),
  );
  expect(ended).toBe("response.completed");
  await expect
    .poll(async () => (await (await request.get("/api/requests?limit=50")).json()).some((r: { transport?: string }) => r.transport === "websocket"))
    .toBe(true);
  await page.reload();
  await hydrated(page);
  await expect(page.locator(`table.log tbody tr[data-request="${id}"] [data-api]`)).toHaveText("gemini");
  await expect(page.locator("table.log [data-api]", { hasText: "responses · ws" }).first()).toBeVisible();
});
