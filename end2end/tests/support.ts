import { expect, type Page } from "@playwright/test";

// Helpers the console's specs share.

/** Effects run only in the browser: the root's marker flips once the WASM has hydrated the page. */
export async function hydrated(page: Page) {
  await expect(page.locator(".layout")).toHaveAttribute("data-hydrated", "true");
}

/** Collects the page's console errors and uncaught exceptions. */
export function watchConsole(page: Page): string[] {
  const errors: string[] = [];
  page.on("console", (m) => m.type() === "error" && errors.push(m.text()));
  page.on("pageerror", (e) => errors.push(e.message));
  return errors;
}
