/**
 * `pmt-worker watch` against its own embedded PostgreSQL, which the test
 * restarts: the stream resumes and events written around the restart are shown.
 */
import { afterAll, describe, expect, it } from "vitest";
import { BIN, ChildHandle } from "../harness/cli.js";
import { queryOnce } from "../harness/db.js";
import { startOwnServer } from "../harness/own-server.js";

let watch: ChildHandle | undefined;

afterAll(() => {
  watch?.kill("SIGKILL");
});

async function insertRun(url: string, task: string): Promise<void> {
  await queryOnce(url, "insert into pmt_jobs.job_run (job_id, task, attempt, max_attempts, worker_id) values (1, $1, 1, 1, 'pool-test')", [task]);
}

describe("pmt-worker watch", () => {
  it("streams events, survives a PostgreSQL restart and shows what happened meanwhile", async () => {
    const server = await startOwnServer();
    const url = server.url;

    watch = ChildHandle.spawn(BIN, ["watch", "--json"], { DATABASE_URL: url });
    await watch.waitForOutput(/listening for job events/);
    await insertRun(url, "before.restart");
    await watch.waitForOutput(/"task":"before\.restart","attempt":1,"max_attempts":1,"queue":null,"status":"running"/);

    await server.restart();
    // Written as soon as the server is back: watch may not have reconnected yet.
    await insertRun(url, "during.reconnect");
    await watch.waitForOutput(/reconnected/, 30_000);
    await watch.waitForOutput(/"task":"during\.reconnect"/);
    await insertRun(url, "after.reconnect");
    await watch.waitForOutput(/"task":"after\.reconnect"/);

    const tasks = watch.stdout
      .trim()
      .split("\n")
      .map((l) => JSON.parse(l).task);
    expect(tasks).toEqual(["before.restart", "during.reconnect", "after.reconnect"]);
    watch.kill("SIGINT");
    expect((await watch.exited).code).toBe(0);
  });
});
