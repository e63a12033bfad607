#ifndef SLUICE_RESOURCES_H
#define SLUICE_RESOURCES_H

// Files compiled into the binary (C23 #embed), so that a `sluice` copied alone has everything
// it needs. Each is NUL-terminated.

/// Sources/SluiceBackends/Lua/token_bucket.lua
const char *sluice_lua_token_bucket(void);
/// Sources/SluiceBackends/Lua/breaker.lua
const char *sluice_lua_breaker(void);
/// Sources/SluiceBackends/Lua/leased_write.lua
const char *sluice_lua_leased_write(void);

#endif
