//! Mock servers used by the harness stack: Netcup CCP DNS API, MaxMind GeoIP2 web service and a
//! Mailpit-compatible mail catcher. Each is a library server that starts on a listener and returns
//! a handle that knows its address and shuts down cleanly.
