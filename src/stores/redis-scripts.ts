/** The Lua scripts of the Redis store: every operation the Store contract says is atomic. */
import type { Redis } from 'ioredis';

/**
 * Some scripts reach keys they only learn inside Redis (the ids in a device's pending set), so they
 * build key names themselves from bases passed in ARGV. This mirrors keyPart() in keys.ts. It makes the
 * scripts single-node only (not Redis Cluster safe). Lua only ever decodes JSON here, never encodes it:
 * cjson would turn [] into {} and round big numbers, so rewritten records are serialised in TypeScript.
 */
export const LUA_PRELUDE = `
local function esc(s)
  return (string.gsub(string.gsub(s, '%%', '%%25'), ':', '%%3A'))
end
local function extendTtl(key, ttl)
  if redis.call('PTTL', key) < ttl then redis.call('PEXPIRE', key, ttl) end
end
local function dropDevice(deviceBase, pendingBase, requestBase, id)
  local pk = pendingBase .. esc(id)
  for _, rid in ipairs(redis.call('ZRANGE', pk, 0, -1)) do
    local rk = requestBase .. esc(rid)
    local raw = redis.call('GET', rk)
    if raw and cjson.decode(raw).status == 'pending' then redis.call('DEL', rk) end
  end
  redis.call('DEL', pk)
  redis.call('DEL', deviceBase .. esc(id))
end
-- Compare-and-set of a pending request's record: takes it off its device's pending set and the open
-- index. False (nothing written) when the record is no longer the expected one.
local function swapRequest(requestKey, pendingKey, openKey, expected, new, id)
  if redis.call('GET', requestKey) ~= expected then return false end
  redis.call('SET', requestKey, new, 'KEEPTTL')
  redis.call('ZREM', pendingKey, id)
  if redis.call('GET', openKey) == id then redis.call('DEL', openKey) end
  return true
end
-- Appends a logged event (see entryBody in event-log.ts) and publishes it; returns its id. Trims the
-- log's entries older than the retention from the oldest up, raising the floor past each one.
local function appendEvent(seqKey, logKey, floorKey, body, now, retention, idleTtl, channel)
  local id = redis.call('INCR', seqKey)
  local member = '{"eventId":' .. string.format('%d', id) .. ',' .. string.sub(body, 2)
  local floor = tonumber(redis.call('GET', floorKey) or '0')
  while true do
    local oldest = redis.call('ZRANGE', logKey, 0, 0, 'WITHSCORES')
    if #oldest == 0 then break end
    local at = tonumber(string.match(oldest[1], '^{"eventId":%d+,"at":(%-?%d+),'))
    if at and at >= now - retention then break end
    local oid = tonumber(oldest[2])
    if oid > floor then floor = oid end
    redis.call('ZREMRANGEBYRANK', logKey, 0, 0)
  end
  redis.call('ZADD', logKey, id, member)
  redis.call('SET', floorKey, string.format('%d', floor), 'PX', idleTtl)
  redis.call('PEXPIRE', logKey, idleTtl)
  redis.call('PUBLISH', channel, member)
  return id
end
`;

type Arg = string | number;
export type ScriptName = keyof typeof SCRIPTS;
/** The commands defineCommand adds at run time; the typings cannot know them. */
export type ScriptedRedis = Redis & { [K in ScriptName]: (...args: Arg[]) => Promise<unknown> };

export const SCRIPTS = {
  /** KEYS: open index, request, device pending set, expiry index, cap counter. ARGV: id, json, now, ttl,
   * createdAt, requestBase, expiresAt, cap max ('' for none), cap counter ttl. Returns {0, existing json}
   * to join, {1} when created, {2} when capped, {-1} when the id is taken. */
  mailotpCreateRequest: {
    numberOfKeys: 5,
    lua: `
local openId = redis.call('GET', KEYS[1])
if openId then
  local raw = redis.call('GET', ARGV[6] .. esc(openId))
  if raw then
    local r = cjson.decode(raw)
    if r.status == 'pending' and tonumber(r.expiresAt) > tonumber(ARGV[3]) then return {0, raw} end
  end
end
if redis.call('EXISTS', KEYS[2]) == 1 then return {-1} end
local cap = tonumber(ARGV[8])
if cap and tonumber(redis.call('GET', KEYS[5]) or '0') >= cap then return {2} end
local ttl = tonumber(ARGV[4])
redis.call('SET', KEYS[2], ARGV[2], 'PX', ttl)
redis.call('SET', KEYS[1], ARGV[1], 'PX', ttl)
redis.call('ZADD', KEYS[3], ARGV[5], ARGV[1])
extendTtl(KEYS[3], ttl)
redis.call('ZADD', KEYS[4], ARGV[7], ARGV[1])
if cap and redis.call('INCR', KEYS[5]) == 1 then redis.call('PEXPIRE', KEYS[5], ARGV[9]) end
return {1}`,
  },
  /** KEYS: event seq, device log, device floor. ARGV: body, now, retention, idle ttl, channel. Returns the id. */
  mailotpAppendEvent: {
    numberOfKeys: 3,
    lua: `
return appendEvent(KEYS[1], KEYS[2], KEYS[3], ARGV[1], tonumber(ARGV[2]), tonumber(ARGV[3]), ARGV[4], ARGV[5])`,
  },
  /** KEYS: request, device pending set, open index, expiry index, event seq, device log, device floor.
   * ARGV: expected json, expired json, id, event body, now, retention, idle ttl, channel.
   * Compare-and-set pending → expired plus its logged event; the event id, or 0 when the record changed. */
  mailotpExpireRequest: {
    numberOfKeys: 7,
    lua: `
if not swapRequest(KEYS[1], KEYS[2], KEYS[3], ARGV[1], ARGV[2], ARGV[3]) then return 0 end
redis.call('ZREM', KEYS[4], ARGV[3])
return appendEvent(KEYS[5], KEYS[6], KEYS[7], ARGV[4], tonumber(ARGV[5]), tonumber(ARGV[6]), ARGV[7], ARGV[8])`,
  },
  /** KEYS: request, device pending set, open index. ARGV: expected json, new json, id.
   * Compare-and-set of the whole record; 1 when swapped. */
  mailotpDecideRequest: {
    numberOfKeys: 3,
    lua: `
if not swapRequest(KEYS[1], KEYS[2], KEYS[3], ARGV[1], ARGV[2], ARGV[3]) then return 0 end
return 1`,
  },
  /** KEYS: key. ARGV: expected value, new value. 1 when swapped. */
  mailotpCompareAndSet: {
    numberOfKeys: 1,
    lua: `
if redis.call('GET', KEYS[1]) ~= ARGV[1] then return 0 end
redis.call('SET', KEYS[1], ARGV[2], 'KEEPTTL')
return 1`,
  },
  /** KEYS: device-of(user), device(new id). ARGV: deviceBase, pendingBase, requestBase, new id, json, replace.
   * Returns 'exists', 'conflict' (id owned by another user) or 'created'. */
  mailotpPutDevice: {
    numberOfKeys: 2,
    lua: `
local oldId = redis.call('GET', KEYS[1])
if oldId and redis.call('EXISTS', ARGV[1] .. esc(oldId)) == 0 then oldId = false end
if oldId and ARGV[6] ~= '1' then return 'exists' end
if oldId ~= ARGV[4] and redis.call('EXISTS', KEYS[2]) == 1 then return 'conflict' end
if oldId then dropDevice(ARGV[1], ARGV[2], ARGV[3], oldId) end
redis.call('SET', KEYS[2], ARGV[5])
redis.call('SET', KEYS[1], ARGV[4])
return 'created'`,
  },
  /** KEYS: device-of(user). ARGV: deviceBase, pendingBase, requestBase. Returns the removed device json or nil. */
  mailotpRemoveDevice: {
    numberOfKeys: 1,
    lua: `
local id = redis.call('GET', KEYS[1])
if not id then return false end
local raw = redis.call('GET', ARGV[1] .. esc(id))
dropDevice(ARGV[1], ARGV[2], ARGV[3], id)
redis.call('DEL', KEYS[1])
return raw`,
  },
  /** KEYS: device-of(from), device-of(to), device. ARGV: device id, rewritten json. The json was built
   * from a read of the device; 'changed' when the binding moved meanwhile (the caller reads again). */
  mailotpMoveDevice: {
    numberOfKeys: 3,
    lua: `
if redis.call('GET', KEYS[1]) ~= ARGV[1] then return 'changed' end
if redis.call('EXISTS', KEYS[2]) == 1 then return 'exists' end
redis.call('SET', KEYS[3], ARGV[2])
redis.call('SET', KEYS[2], ARGV[1])
redis.call('DEL', KEYS[1])
return 'moved'`,
  },
  /** KEYS: approvals hash, approval-users set. ARGV: scope, json, now, grace, user.
   * Also drops long-expired scopes and keeps the hash alive until its latest approval expires. */
  mailotpPutApproval: {
    numberOfKeys: 2,
    lua: `
redis.call('HSET', KEYS[1], ARGV[1], ARGV[2])
local now = tonumber(ARGV[3])
local grace = tonumber(ARGV[4])
local latest = now
local all = redis.call('HGETALL', KEYS[1])
for i = 1, #all, 2 do
  local exp = tonumber(cjson.decode(all[i + 1]).expiresAt)
  if exp < now - grace then redis.call('HDEL', KEYS[1], all[i])
  elseif exp > latest then latest = exp end
end
if redis.call('EXISTS', KEYS[1]) == 1 then
  redis.call('PEXPIRE', KEYS[1], math.max(1, math.ceil(latest - now + grace)))
  redis.call('SADD', KEYS[2], ARGV[5])
end
return 1`,
  },
  /** KEYS: approvals hash, approval-users set. ARGV: clientIp, user. Returns how many were deleted. */
  mailotpDeleteApprovalsByIp: {
    numberOfKeys: 2,
    lua: `
local n = 0
local all = redis.call('HGETALL', KEYS[1])
for i = 1, #all, 2 do
  if cjson.decode(all[i + 1]).clientIp == ARGV[1] then
    redis.call('HDEL', KEYS[1], all[i])
    n = n + 1
  end
end
if redis.call('EXISTS', KEYS[1]) == 0 then redis.call('SREM', KEYS[2], ARGV[2]) end
return n`,
  },
  /** KEYS: approvals hash, approval-users set. ARGV: user. Forgets the user once the hash is gone. */
  mailotpPruneApprovalUser: {
    numberOfKeys: 2,
    lua: `
if redis.call('EXISTS', KEYS[1]) == 0 then redis.call('SREM', KEYS[2], ARGV[1]) end
return 1`,
  },
  /** KEYS: the user's device-of pointer. ARGV: device key base. The device record it points to, or
   * false: a login's lookup in one round trip instead of two in a row. */
  mailotpDeviceOfUser: {
    numberOfKeys: 1,
    lua: `
local id = redis.call('GET', KEYS[1])
if not id then return false end
return redis.call('GET', ARGV[1] .. esc(id))`,
  },
  /** KEYS: counter. ARGV: ttl. INCR that sets the TTL on the first hit of the window. */
  mailotpHit: {
    numberOfKeys: 1,
    lua: `
local n = redis.call('INCR', KEYS[1])
if n == 1 then redis.call('PEXPIRE', KEYS[1], ARGV[1]) end
return n`,
  },
  /** KEYS: counter. DECR unless the counter is gone or at zero (DECR keeps the TTL). */
  mailotpRelease: {
    numberOfKeys: 1,
    lua: `
if tonumber(redis.call('GET', KEYS[1]) or '0') > 0 then return redis.call('DECR', KEYS[1]) end
return 0`,
  },
  /** KEYS: value. ARGV: now, ttl, body. Sets the value unless an unexpired one is there; 1 when set. */
  mailotpSetValueIfAbsent: {
    numberOfKeys: 1,
    lua: `
local raw = redis.call('GET', KEYS[1])
if raw and cjson.decode(raw).e > tonumber(ARGV[1]) then return 0 end
redis.call('SET', KEYS[1], ARGV[3], 'PX', ARGV[2])
return 1`,
  },
  /** KEYS: value. ARGV: now, ttl, expected value, body. Sets the value only while the unexpired one is
   * the expected one (compare-and-set); 1 when set. */
  mailotpReplaceValue: {
    numberOfKeys: 1,
    lua: `
local raw = redis.call('GET', KEYS[1])
if not raw then return 0 end
local body = cjson.decode(raw)
if body.e <= tonumber(ARGV[1]) or body.v ~= ARGV[3] then return 0 end
redis.call('SET', KEYS[1], ARGV[4], 'PX', ARGV[2])
return 1`,
  },
} as const;
