import { expect, test } from "@playwright/test";
import { hydrated } from "./support";

const MOCK_REPLY =
  "Hello from the mock upstream, a reply of exactly twenty tokens for tests and the gateway benchmark.";

test("the tester streams a reply through the gateway with timings, tokens and cost", async ({ page }) => {
  await page.goto("/tester");
  await hydrated(page);
  await page.getByLabel("Model").selectOption("gpt-4o-mini");
  await page.getByLabel("Message 1", { exact: true }).fill("Say hello");
  await page.getByLabel("Stream the reply").check();

  // Record every text the reply shows while it streams.
  await page.evaluate(() => {
    const el = document.querySelector('[data-run="reply"]')!;
    const seen: string[] = [];
    (window as any).__replies = seen;
    new MutationObserver(() => seen.push(el.textContent ?? "")).observe(el, {
      subtree: true,
      childList: true,
      characterData: true,
    });
  });
  const sent = page.waitForRequest((r) => r.url().endsWith("/v1/chat/completions") && r.method() === "POST");
  await page.getByRole("button", { name: "Send", exact: true }).click();
  const body = (await sent).postDataJSON();
  expect(body.stream).toBe(true);
  expect(body.stream_options).toEqual({ include_usage: true });
  expect(body.messages[0].role).toBe("system");

  const reply = page.locator('[data-run="reply"]');
  await expect(reply).toHaveText(MOCK_REPLY);
  // One SSE chunk per word (plus the role and usage chunks), each applied as it was read.
  const chunks = Number(await page.locator('[data-run="chunks"]').textContent());
  expect(chunks).toBeGreaterThanOrEqual(20);
  const seen: string[] = await page.evaluate(() => (window as any).__replies);
  expect(seen.every((t) => MOCK_REPLY.startsWith(t) || t === "The reply appears here.")).toBe(true);

  await expect(page.locator('[data-run="ttft"]')).toHaveText(/^[\d.]+ (ms|s)$/);
  await expect(page.locator('[data-run="total"]')).toHaveText(/^[\d.]+ (ms|s)$/);
  await expect(page.locator('[data-run="tokens"]')).toHaveText("12 / 20");
  await expect(page.locator('[data-run="cost"]')).toHaveText(/^\$0\.0000\d+$/);
  await expect(page.locator('[data-run="status"]')).toHaveText("200");

  await page.getByRole("button", { name: "Raw JSON" }).click();
  await expect(page.locator("[data-code]")).toContainText("chat.completion.chunk");
  await page.getByRole("button", { name: "Python" }).click();
  await expect(page.locator("[data-code]")).toContainText("from openai import OpenAI");
  await expect(page.locator("[data-code]")).toContainText(`base_url="${new URL(page.url()).origin}/v1"`);

  // Keep the reply as the next turn of the conversation.
  await page.getByRole("button", { name: "Add the reply to the conversation" }).click();
  await expect(page.getByLabel("Message 2", { exact: true })).toHaveValue(MOCK_REPLY);
  await expect(page.getByLabel("Message 3", { exact: true })).toHaveValue("");
  await page.getByRole("button", { name: "Reset the form" }).click();
});

test("the tester sends without streaming too", async ({ page }) => {
  await page.goto("/tester");
  await hydrated(page);
  await page.getByLabel("Model").selectOption("claude-sonnet-4-5");
  await page.getByLabel("Stream the reply").uncheck();
  await page.getByRole("button", { name: "Send", exact: true }).click();
  await expect(page.locator('[data-run="reply"]')).toHaveText(MOCK_REPLY);
  await expect(page.locator('[data-run="tokens"]')).toHaveText(/^\d+ \/ 20$/);
  await page.getByRole("button", { name: "Raw JSON" }).click();
  await expect(page.locator("[data-code]")).toContainText('"object": "chat.completion"');
  await page.getByRole("button", { name: "Reset the form" }).click();
});

test("the tester speaks each inbound API: Messages, Responses and Gemini's, streamed and not", async ({ page }) => {
  await page.goto("/tester");
  await hydrated(page);
  await page.getByLabel("Model").selectOption("deepseek-chat");
  await page.getByLabel("Message 1", { exact: true }).fill("Say hello");
  const cases = [
    { api: "messages", path: "/v1/messages", stream: true, sdk: "import anthropic" },
    { api: "messages", path: "/v1/messages", stream: false, sdk: "client.messages.create(" },
    { api: "responses", path: "/v1/responses", stream: true, sdk: "client.responses.create(" },
    { api: "responses", path: "/v1/responses", stream: false, sdk: "print(reply.output_text)" },
    { api: "gemini", path: "/v1beta/models/deepseek-chat:streamGenerateContent?alt=sse", stream: true, sdk: "generate_content_stream(" },
    { api: "gemini", path: "/v1beta/models/deepseek-chat:generateContent", stream: false, sdk: "from google import genai" },
  ];
  for (const c of cases) {
    await page.getByLabel("API").selectOption(c.api);
    if (c.stream) await page.getByLabel("Stream the reply").check();
    else await page.getByLabel("Stream the reply").uncheck();
    const sent = page.waitForRequest((r) => r.url().endsWith(c.path) && r.method() === "POST");
    await page.getByRole("button", { name: "Send", exact: true }).click();
    const request = await sent;
    const body = request.postDataJSON();
    if (c.api === "messages") {
      expect(body.system).toBe("You are a helpful assistant.");
      expect(body.max_tokens).toBe(256);
      expect(request.headers()["anthropic-version"]).toBe("2023-06-01");
    } else if (c.api === "gemini") {
      expect(body.systemInstruction).toEqual({ parts: [{ text: "You are a helpful assistant." }] });
      expect(body.contents[0]).toEqual({ role: "user", parts: [{ text: "Say hello" }] });
    } else {
      expect(body.instructions).toBe("You are a helpful assistant.");
      expect(body.input[0]).toEqual({ role: "user", content: "Say hello" });
    }
    await expect(page.locator('[data-run="reply"]')).toHaveText(MOCK_REPLY);
    await expect(page.locator('[data-run="tokens"]')).toHaveText("12 / 20");
    await expect(page.locator('[data-run="status"]')).toHaveText("200");
    await page.getByRole("button", { name: "Python" }).click();
    await expect(page.locator("[data-code]")).toContainText(c.sdk);
  }
  await page.getByRole("button", { name: "Reset the form" }).click();
});

test("the tester shows the gateway's errors", async ({ page }) => {
  await page.route("**/v1/chat/completions", (route) =>
    route.fulfill({
      status: 404,
      contentType: "application/json",
      body: JSON.stringify({
        error: { message: "The model `nope` does not exist", type: "invalid_request_error", param: "model", code: "model_not_found" },
      }),
    }),
  );
  await page.goto("/tester");
  await hydrated(page);
  await page.getByRole("button", { name: "Send", exact: true }).click();
  await expect(page.locator('[data-run="error"]')).toHaveText(
    "HTTP 404 — invalid_request_error (model_not_found): The model `nope` does not exist",
  );
  await expect(page.locator('[data-run="status"]')).toHaveText("404");
});

test("the tester form survives a reload", async ({ page }) => {
  await page.goto("/tester");
  await hydrated(page);
  await page.getByLabel("Model").selectOption("gemini-2.5-flash");
  await page.getByLabel("System prompt").fill("You are a pirate.");
  await page.getByLabel("Message 1", { exact: true }).fill("Ahoy?");
  await page.getByRole("button", { name: "Add a turn" }).click();
  await page.getByLabel("Role").nth(1).selectOption("assistant");
  await page.getByLabel("Message 2", { exact: true }).fill("Arr!");
  await page.getByLabel("Max tokens").fill("64");
  await page.getByLabel("Stream the reply").uncheck();

  await page.reload();
  await hydrated(page);
  await expect(page.getByLabel("Model")).toHaveValue("gemini-2.5-flash");
  await expect(page.getByLabel("System prompt")).toHaveValue("You are a pirate.");
  await expect(page.getByLabel("Message 1", { exact: true })).toHaveValue("Ahoy?");
  await expect(page.getByLabel("Message 2", { exact: true })).toHaveValue("Arr!");
  await expect(page.getByLabel("Role").nth(1)).toHaveValue("assistant");
  await expect(page.getByLabel("Max tokens")).toHaveValue("64");
  await expect(page.getByLabel("Stream the reply")).not.toBeChecked();
  await expect(page.locator("[data-code]")).toContainText('"model": "gemini-2.5-flash"');
  await expect(page.locator("[data-code]")).not.toContainText("curl -N");

  // Removing a turn keeps the others.
  await page.getByRole("button", { name: "Remove message 1" }).click();
  await expect(page.getByLabel("Message 1", { exact: true })).toHaveValue("Arr!");
  await page.getByRole("button", { name: "Reset the form" }).click();
  await expect(page.getByLabel("System prompt")).toHaveValue("You are a helpful assistant.");
});
