// The image's HEALTHCHECK: /healthz on the port the worker listens on
// (HTTP_PORT), with Node's fetch, so the image needs no curl.
const port = process.env.HTTP_PORT || "9464";
try {
  const response = await fetch(`http://127.0.0.1:${port}/healthz`, { signal: AbortSignal.timeout(4000) });
  console.log(`healthz on port ${port}: ${response.status}`);
  process.exit(response.ok ? 0 : 1);
} catch (error) {
  console.error(`healthz on port ${port}: ${error.cause?.code ?? error.message}`);
  process.exit(1);
}
