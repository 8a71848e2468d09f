-- wrk script: POST /v1/decisions with BATCH new decisions per request (a fresh decision_id each time).
-- Environment: TETHER_TOKEN (bearer token), BATCH (decisions per request), PREFIX (decision id prefix).
local token = os.getenv("TETHER_TOKEN")
local batch = tonumber(os.getenv("BATCH") or "1")
local counter = 0
local thread_id = 0

setup = function(thread)
  thread_id = thread_id + 1
  thread:set("tid", thread_id)
end

request = function()
  local items = {}
  for i = 1, batch do
    counter = counter + 1
    local n = (tid or 0) .. "-" .. counter
    items[i] = '{"decision_id":"' .. os.getenv("PREFIX") .. n .. '","alert_id":"A' .. n ..
      '","tenant":"acme","severity":"low","rule_family":"phishing","data_source":"o365",' ..
      '"verdict":"close","decided_at":"2026-03-02T10:00:00Z"}'
  end
  return wrk.format("POST", "/v1/decisions",
    {["Content-Type"] = "application/json", ["Authorization"] = "Bearer " .. token},
    "[" .. table.concat(items, ",") .. "]")
end

done = function(summary, latency, requests)
  io.write(string.format('{"requests": %d, "seconds": %.3f, "errors": %d}\n', summary.requests,
    summary.duration / 1e6, summary.errors.status + summary.errors.connect + summary.errors.read +
    summary.errors.write + summary.errors.timeout))
end
