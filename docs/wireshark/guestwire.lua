-- guestwire.lua: a Wireshark/tshark dissector for the guest-agent protocols inside vsock
-- payloads (LINKTYPE_VSOCK captures written by guestwire): quantix (QTX\x01 + u32 BE length +
-- protobuf AgentMessage, and the legacy u32 BE length framing), fcexec (u32 BE length + JSON),
-- qga (JSON stream with 0xFF delimiters), and the hybrid-vsock CONNECT/OK lines.
--
-- Wireshark's vsock dissector shows payloads as raw bytes and keeps no port table, so this runs as
-- a postdissector over the `vsock.payload` field and recognises each protocol by its bytes.
-- guestwire writes one record per read/write chunk; a frame that spans records is shown as a
-- continuation in the records after its header.
--
-- Use: wireshark -X lua_script:docs/wireshark/guestwire.lua capture.pcap
--      tshark -X lua_script:docs/wireshark/guestwire.lua -r capture.pcap -T fields -e guestwire.type
-- or copy it into ~/.local/lib/wireshark/plugins/.

local gw = Proto("guestwire", "guestwire guest-agent protocols")

local f_protocol = ProtoField.string("guestwire.protocol", "Protocol")
local f_type = ProtoField.string("guestwire.type", "Message type")
local f_length = ProtoField.uint32("guestwire.length", "Frame length")
local f_message_id = ProtoField.string("guestwire.message_id", "Message id")
local f_field = ProtoField.uint32("guestwire.field", "Payload field number")
local f_json = ProtoField.string("guestwire.json", "JSON")
local f_handshake = ProtoField.string("guestwire.handshake", "Hybrid vsock handshake")
local f_continuation = ProtoField.uint32("guestwire.continuation", "Bytes of a frame begun earlier")

gw.fields = { f_protocol, f_type, f_length, f_message_id, f_field, f_json, f_handshake, f_continuation }

local vsock_payload = Field.new("vsock.payload")

-- limiquantix.agent.v1 AgentMessage payload arms: field number -> proto name (kept equal to
-- src/wire/quantix/envelope.rs by a test).
local ARMS = {
  [10] = "ping",
  [11] = "execute",
  [12] = "file_write",
  [13] = "file_read",
  [14] = "shutdown",
  [15] = "reset_password",
  [16] = "configure_network",
  [17] = "quiesce",
  [18] = "thaw",
  [19] = "sync_time",
  [20] = "list_directory",
  [21] = "create_directory",
  [22] = "file_delete",
  [23] = "file_stat",
  [24] = "display_resize",
  [25] = "clipboard_update",
  [26] = "clipboard_get",
  [27] = "list_processes",
  [28] = "kill_process",
  [29] = "list_services",
  [30] = "service_control",
  [31] = "get_hardware_info",
  [32] = "list_installed_software",
  [33] = "agent_update",
  [34] = "get_capabilities",
  [50] = "pong",
  [51] = "execute_response",
  [52] = "file_write_response",
  [53] = "file_read_response",
  [54] = "shutdown_response",
  [55] = "reset_password_response",
  [56] = "configure_network_response",
  [57] = "quiesce_response",
  [58] = "thaw_response",
  [59] = "sync_time_response",
  [60] = "list_directory_response",
  [61] = "create_directory_response",
  [62] = "file_delete_response",
  [63] = "file_stat_response",
  [64] = "display_resize_response",
  [65] = "clipboard_update_response",
  [66] = "clipboard_get_response",
  [67] = "list_processes_response",
  [68] = "kill_process_response",
  [69] = "list_services_response",
  [70] = "service_control_response",
  [71] = "hardware_info_response",
  [72] = "list_installed_software_response",
  [73] = "agent_update_response",
  [74] = "get_capabilities_response",
  [100] = "telemetry",
  [101] = "agent_ready",
  [102] = "error",
  [103] = "clipboard_changed",
}

local MAX_FRAME = 16 * 1024 * 1024

-- A protobuf varint at `off` (0-based) of `tvb`: value and the offset after it, or nil.
local function varint(tvb, off, limit)
  local value, shift = 0, 0
  while off < limit and shift < 64 do
    local b = tvb(off, 1):uint()
    off = off + 1
    value = value + (b % 128) * (2 ^ shift)
    if b < 128 then return value, off end
    shift = shift + 7
  end
  return nil
end

-- The top level of an AgentMessage in tvb[off, off+len): message_id and the payload arm.
local function dissect_agent_message(tvb, tree, off, len)
  local limit = off + len
  local kind = "unknown"
  while off < limit do
    local key, after = varint(tvb, off, limit)
    if key == nil then return "bad_protobuf" end
    local field, wire = math.floor(key / 8), key % 8
    off = after
    if wire == 0 then
      local _, a = varint(tvb, off, limit)
      if a == nil then return "bad_protobuf" end
      off = a
    elseif wire == 1 then
      off = off + 8
    elseif wire == 5 then
      off = off + 4
    elseif wire == 2 then
      local n, a = varint(tvb, off, limit)
      if n == nil or a + n > limit then return "bad_protobuf" end
      if field == 1 then
        tree:add(f_message_id, tvb(a, n))
      elseif ARMS[field] ~= nil then
        kind = ARMS[field]
        tree:add(f_field, tvb(off - 1, 1), field)
      elseif field ~= 2 then
        kind = "unknown_type"
      end
      off = a + n
    else
      return "bad_protobuf"
    end
  end
  if off > limit then return "bad_protobuf" end
  return kind
end

local function add_frame(tree, tvb, off, len, protocol)
  local t = tree:add(gw, tvb(off, len))
  t:add(f_protocol, protocol)
  return t
end

-- One frame at `off`; returns the offset after it, or nil when none starts there.
local function dissect_one(tvb, tree, off)
  local rest = tvb:len() - off
  if rest <= 0 then return nil end
  local first = tvb(off, 1):uint()
  -- Hybrid vsock handshake: "CONNECT <port>\n" (host) or "OK <n>\n" (VMM).
  if rest >= 3 then
    local head = tvb(off, math.min(rest, 8)):string()
    if head:sub(1, 8) == "CONNECT " or head:sub(1, 3) == "OK " then
      local line_end = off
      while line_end < tvb:len() and tvb(line_end, 1):uint() ~= 10 do line_end = line_end + 1 end
      local n = math.min(line_end + 1, tvb:len()) - off
      local t = add_frame(tree, tvb, off, n, "hybrid-vsock")
      local text = tvb(off, n):string():gsub("%s+$", "")
      t:add(f_handshake, tvb(off, n), text)
      t:add(f_type, head:sub(1, 3) == "OK " and "ok" or "connect")
      return off + n
    end
  end
  -- quantix: the magic "QTX\x01" (51 54 58 01) + u32 BE length + AgentMessage.
  if rest >= 8 and tvb(off, 4):uint() == 0x51545801 then
    local len = tvb(off + 4, 4):uint()
    local t = add_frame(tree, tvb, off, math.min(rest, 8 + len), "quantix")
    t:add(f_length, tvb(off + 4, 4))
    if len > MAX_FRAME then
      t:add(f_type, "oversize_length")
      return nil
    end
    if rest < 8 + len then
      t:add(f_type, "partial")
      return nil
    end
    t:add(f_type, dissect_agent_message(tvb, t, off + 8, len))
    return off + 8 + len
  end
  -- qga: a JSON object, or the 0xFF delimiter before a guest-sync-delimited reply.
  if first == 0x7b or first == 0xff then
    local start = off
    if first == 0xff then start = off + 1 end
    local n = tvb:len() - start
    local t = add_frame(tree, tvb, off, tvb:len() - off, "qga")
    if n <= 0 then
      t:add(f_type, "delimiter")
      return tvb:len()
    end
    local text = tvb(start, n):string()
    local kind = text:match('"execute"%s*:%s*"([%w%-_]+)"')
      or (text:find('"return"', 1, true) and "return")
      or (text:find('"error"', 1, true) and "error")
      or "json"
    t:add(f_type, kind)
    t:add(f_json, tvb(start, n), text)
    return tvb:len()
  end
  -- fcexec (u32 BE length + JSON) or quantix-legacy (u32 BE length + protobuf).
  if rest >= 5 then
    local len = tvb(off, 4):uint()
    if len > 0 and len <= MAX_FRAME and rest >= 4 + len then
      local b = tvb(off + 4, 1):uint()
      if b == 0x7b then
        local t = add_frame(tree, tvb, off, 4 + len, "fcexec")
        t:add(f_length, tvb(off, 4))
        local text = tvb(off + 4, len):string()
        t:add(f_type, text:match('"type"%s*:%s*"([%w_]+)"') or "request")
        t:add(f_json, tvb(off + 4, len), text)
        return off + 4 + len
      elseif b == 0x0a then
        local t = add_frame(tree, tvb, off, 4 + len, "quantix-legacy")
        t:add(f_length, tvb(off, 4))
        t:add(f_type, dissect_agent_message(tvb, t, off + 4, len))
        return off + 4 + len
      end
    end
  end
  return nil
end

function gw.dissector(_, pinfo, tree)
  local fields = { vsock_payload() }
  if #fields == 0 then return end
  local range = fields[1].range
  if range == nil or range:len() == 0 then return end
  local tvb = range:tvb()
  local off, found = 0, false
  while off < tvb:len() do
    local after = dissect_one(tvb, tree, off)
    if after == nil then break end
    found = true
    off = after
  end
  if not found then
    tree:add(gw, tvb()):add(f_continuation, tvb(), tvb:len())
  end
  if found then pinfo.cols.protocol = "guestwire" end
end

register_postdissector(gw)
