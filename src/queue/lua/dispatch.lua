--- dispatch alone (timers, start-up): the next builds towards BullMQ.
--- ARGV: now (ms). Answers the builds it picked, {id, job id, …}.
--- KEYS: none; every key is built from the constants ahead of the script (BUILD, LANE, …).
--- @include "lanes"

return dispatch(tonumber(ARGV[1]))
