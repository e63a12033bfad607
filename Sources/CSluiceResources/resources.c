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
static const char retire_unless_leased[] = {
#embed "../SluiceBackends/Lua/retire_unless_leased.lua"
    , 0
};

static const char budget[] = {
#embed "../SluiceBackends/Lua/budget.lua"
    , 0
};
static const char slot_queue[] = {
#embed "../SluiceBackends/Lua/slot_queue.lua"
    , 0
};

static const char take_lease[] = {
#embed "../SluiceBackends/Lua/take_lease.lua"
    , 0
};
static const char plain_op[] = {
#embed "../SluiceBackends/Lua/plain_op.lua"
    , 0
};

const char *sluice_lua_token_bucket(void) { return token_bucket; }
const char *sluice_lua_plain_op(void) { return plain_op; }
const char *sluice_lua_take_lease(void) { return take_lease; }
const char *sluice_lua_breaker(void) { return breaker; }
const char *sluice_lua_leased_write(void) { return leased_write; }
const char *sluice_lua_retire_unless_leased(void) { return retire_unless_leased; }
const char *sluice_lua_budget(void) { return budget; }
const char *sluice_lua_slot_queue(void) { return slot_queue; }

// The built-in embedder's token table and vocabulary, and the WordNet lexicon of the semantic
// verifier (Sources/SluiceDomain/Resources, see NOTICE.md there): about 7.5 MB together.
static const unsigned char tokens_table[] = {
#embed "../SluiceDomain/Resources/tokens.table"
};
static const unsigned char tokens_vocab[] = {
#embed "../SluiceDomain/Resources/tokens.vocab"
};
static const unsigned char lexicon[] = {
#embed "../SluiceDomain/Resources/lexicon.txt"
};

// The dashboard (Sources/SluiceServer/Dashboard/dashboard.html): one static page.
static const unsigned char dashboard[] = {
#embed "../SluiceServer/Dashboard/dashboard.html"
};

const unsigned char *sluice_dashboard_html(size_t *length) { *length = sizeof dashboard; return dashboard; }
const unsigned char *sluice_tokens_table(size_t *length) { *length = sizeof tokens_table; return tokens_table; }
const unsigned char *sluice_tokens_vocab(size_t *length) { *length = sizeof tokens_vocab; return tokens_vocab; }
const unsigned char *sluice_lexicon(size_t *length) { *length = sizeof lexicon; return lexicon; }
