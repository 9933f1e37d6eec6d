// A warm Node.js "container" for one Lambda function of the deploy harness.
//
// Usage: node node_runtime.js <asset dir> <Handler, e.g. framework.onEvent> <timeout seconds>
// Loads the handler module from the asset unmodified, listens on 127.0.0.1 (port printed on
// stdout) and runs one invocation per POST: the body is the event, the answer is
// {"result": ...} or {"error": {...}} shaped as the Lambda Node.js runtime reports an unhandled
// error (errorType, errorMessage, trace), which is what the Provider framework reads back.
"use strict";
const http = require("http");
const path = require("path");

const [assetDir, handlerName, timeoutSeconds] = process.argv.slice(2);
const dot = handlerName.lastIndexOf(".");
const handlerModule = require(path.join(assetDir, handlerName.slice(0, dot)));
const handler = handlerModule[handlerName.slice(dot + 1)];

function asLambdaError(error) {
  const err = error instanceof Error ? error : new Error(String(error));
  return {
    errorType: err.name || "Error",
    errorMessage: err.message,
    trace: String(err.stack || "").split("\n"),
  };
}

function timedOut() {
  return new Promise((_, reject) =>
    setTimeout(() => {
      const error = new Error(`Task timed out after ${Number(timeoutSeconds).toFixed(2)} seconds`);
      error.name = "Sandbox.Timedout";
      reject(error);
    }, Number(timeoutSeconds) * 1000).unref(),
  );
}

const server = http.createServer((request, response) => {
  const chunks = [];
  request.on("data", (chunk) => chunks.push(chunk));
  request.on("end", async () => {
    let answer;
    try {
      const event = JSON.parse(Buffer.concat(chunks).toString("utf8"));
      const deadline = Date.now() + Number(timeoutSeconds) * 1000;
      // The context fields handlers read (integ-tests-alpha's assertion handler reads the last two).
      const context = {
        functionName: process.env.AWS_LAMBDA_FUNCTION_NAME,
        logStreamName: `harness/${process.env.AWS_LAMBDA_FUNCTION_NAME}`,
        getRemainingTimeInMillis: () => Math.max(0, deadline - Date.now()),
      };
      const result = await Promise.race([handler(event, context), timedOut()]);
      answer = { result: result === undefined ? null : result };
    } catch (error) {
      answer = { error: asLambdaError(error) };
    }
    const body = JSON.stringify(answer);
    response.writeHead(200, { "content-type": "application/json" });
    response.end(body);
  });
});

server.keepAliveTimeout = 60000;
server.listen(0, "127.0.0.1", () => {
  process.stdout.write(`${server.address().port}\n`);
});
