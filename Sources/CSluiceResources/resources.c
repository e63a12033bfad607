// The build tracks #embed'ed files like headers: editing one rebuilds this file.
#pragma clang diagnostic ignored "-Wc23-extensions"
#include "SluiceResources.h"

static const char token_bucket[] = {
#embed "../SluiceBackends/Lua/token_bucket.lua"
    , 0
};
static const char breaker[] = {
#embed "../SluiceBackends/Lua/breaker.lua"
    , 0
};
static const char leased_write[] = {
#embed "../SluiceBackends/Lua/leased_write.lua"
    , 0
};

const char *sluice_lua_token_bucket(void) { return token_bucket; }
const char *sluice_lua_breaker(void) { return breaker; }
const char *sluice_lua_leased_write(void) { return leased_write; }
