-- wrk script: POST a Netcup `login` to the mock's endpoint (wrk -s login.lua URL).
wrk.method = "POST"
wrk.body = '{"action":"login","param":{"customernumber":"123456","apikey":"test-api-key","apipassword":"test-api-password"}}'
wrk.headers["Content-Type"] = "application/json"
