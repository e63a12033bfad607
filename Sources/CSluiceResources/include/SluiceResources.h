#ifndef SLUICE_RESOURCES_H
#define SLUICE_RESOURCES_H

#include <stddef.h>

// Files compiled into the binary (C23 #embed), so that a `sluice` copied alone has everything
// it needs. Each is NUL-terminated.

/// Sources/SluiceBackends/Lua/token_bucket.lua
const char *sluice_lua_token_bucket(void);
/// Sources/SluiceBackends/Lua/breaker.lua
const char *sluice_lua_breaker(void);
/// Sources/SluiceBackends/Lua/leased_write.lua
const char *sluice_lua_leased_write(void);
/// Sources/SluiceBackends/Lua/retire_unless_leased.lua
const char *sluice_lua_retire_unless_leased(void);
/// Sources/SluiceBackends/Lua/budget.lua
const char *sluice_lua_budget(void);
/// Sources/SluiceBackends/Lua/slot_queue.lua
const char *sluice_lua_slot_queue(void);
/// Sources/SluiceBackends/Lua/plain_op.lua
const char *sluice_lua_plain_op(void);
/// Sources/SluiceBackends/Lua/take_lease.lua
const char *sluice_lua_take_lease(void);

/// Sources/SluiceDomain/Resources/tokens.table (binary); `length` receives its size.
const unsigned char *sluice_tokens_table(size_t *length);
/// Sources/SluiceDomain/Resources/tokens.vocab (text, one token per line).
const unsigned char *sluice_tokens_vocab(size_t *length);
/// Sources/SluiceDomain/Resources/lexicon.txt (text).
const unsigned char *sluice_lexicon(size_t *length);

/// Sources/SluiceServer/Dashboard/dashboard.html.
const unsigned char *sluice_dashboard_html(size_t *length);

#endif
