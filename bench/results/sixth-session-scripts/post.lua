counter = 0
request = function()
  counter = counter + 1
  local body = '{"message_type":"notify","stage":"dev","version":"1.0","payload":{"title":"t","message":"hello ' .. counter .. '"}}'
  return wrk.format("POST", "/api/messages", {["Content-Type"]="application/json", ["Authorization"]="Bearer bench-admin-key-0123456789abcdef"}, body)
end
