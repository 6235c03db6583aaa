-- wrk.lua — used by bench/bench.py for the manifest GET figure. Prints one machine-readable line
-- (WRKJSON {...}) at the end; the human-readable `--latency` output stays above it.
-- Note: wrk 4.1 cannot measure HEAD (its parser waits for a body of Content-Length bytes), so the
-- HEAD figures use `loadgen hammer` instead.
wrk.method = os.getenv("WRK_METHOD") or "GET"
local accept = os.getenv("WRK_ACCEPT")
if accept then wrk.headers["Accept"] = accept end

done = function(summary, latency, requests)
  io.write(string.format(
    'WRKJSON {"requests":%d,"duration_us":%d,"status_errors":%d,"connect":%d,"read":%d,' ..
    '"write":%d,"timeout":%d,"p50_us":%.1f,"p99_us":%.1f,"max_us":%.1f}\n',
    summary.requests, summary.duration, summary.errors.status, summary.errors.connect,
    summary.errors.read, summary.errors.write, summary.errors.timeout,
    latency:percentile(50), latency:percentile(99), latency.max))
end
