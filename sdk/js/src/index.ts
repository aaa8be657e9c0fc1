/**
 * @minipay/sdk — import "@minipay/sdk/browser" in a mini-app front end
 * (requestPayment), "@minipay/sdk/server" in a Node backend (the API client
 * and verifyWebhook), or this entry for both.
 */
export * from "./browser.js";
export * from "./server.js";
