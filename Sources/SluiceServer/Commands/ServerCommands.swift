import NIOCore
import SluiceDomain
import SluiceProtocol

/// INFO, STATS, COMMAND, CONFIG GET, DBSIZE, TIME: introspection.
struct ServerCommands: CommandGroup {
    let report: StatsReport
    let configuration: ServerConfiguration

    var commands: [Command] {
        let report = report, configuration = configuration
        return [
            Command("info", arity: -1, summary: "INFO [section ...]: Redis-style text report") { ctx, out throws(CommandError) in
                // As Redis 7: any number of sections; none, "default", "all" or "everything" for all.
                var sections: Set<String> = []
                while ctx.hasMore {
                    let name = try ctx.next()
                    // Names of sections are short and few: the rest are not a section (nor a reason to copy them).
                    if name.readableBytes <= 32 && sections.count < 32 { sections.insert(name.text.lowercased()) }
                }
                ctx.session.reportTallies(to: report.counters.llm)  // this pipeline's own hits included
                out.writeRESPBulk(report.info(sections: sections, now: ctx.now))
                return .done
            },
            Command("stats", arity: 1, summary: "STATS: [name, value, ...] counters of every layer") { ctx, out in
                ctx.session.reportTallies(to: report.counters.llm)  // this pipeline's own hits included
                var items: [RESPValue] = []
                for (name, value) in report.stats(now: ctx.now) {
                    items.append(.bulk(name))
                    items.append(value)
                }
                RESPValue.map(items).encode(into: &out)
                return .done
            },
            Command("dbsize", arity: 1, summary: "DBSIZE: number of keys") { ctx, out in
                out.writeRESPInteger(report.keyCount(now: ctx.now))
                return .done
            },
            Command("time", arity: 1, summary: "TIME: [unix seconds, microseconds]") { ctx, out in
                out.writeRESPArrayHeader(2)
                out.writeRESPBulk(String(ctx.now / 1000))
                out.writeRESPBulk(String((ctx.now % 1000) * 1000))
                return .done
            },
            Command("config", arity: -2, summary: "CONFIG GET pattern: the few settings clients ask for") { ctx, out throws(CommandError) in
                let sub = try ctx.next()
                guard sub.isKeyword("GET") else {
                    throw CommandError("CONFIG \(sub.text.uppercased()) is not supported: Sluice is configured by flags and SLUICE_* variables")
                }
                var items: [RESPValue] = []
                while let pattern = ctx.arguments.next() {
                    for (name, value) in Self.settings(configuration) where Self.glob(pattern.text.lowercased(), name) {
                        items.append(.bulk(name))
                        items.append(.bulk(value))
                    }
                }
                RESPValue.map(items).encode(into: &out)
                return .done
            },
            Command("command", arity: -1, summary: "COMMAND [COUNT | DOCS | INFO name... | LIST]") { ctx, out throws(CommandError) in
                let table = ctx.table
                guard ctx.hasMore else {
                    out.writeRESPArrayHeader(table.commands.count)
                    for c in table.commands { Self.commandInfo(c).encode(into: &out) }
                    return .done
                }
                let sub = try ctx.next()
                if sub.isKeyword("COUNT") {
                    out.writeRESPInteger(table.commands.count)
                } else if sub.isKeyword("LIST") {
                    RESPValue.array(table.commands.map { .bulk($0.name) }).encode(into: &out)
                } else if sub.isKeyword("INFO") {
                    var items: [RESPValue] = []
                    while let name = ctx.arguments.next() {
                        items.append(table.lookup(name).map { Self.commandInfo(table.commands[$0]) } ?? .array(nil))
                    }
                    RESPValue.array(items).encode(into: &out)
                } else if sub.isKeyword("DOCS") {
                    // A map name → [summary, text] as RESP2 pairs; redis-cli uses it for hints.
                    var wanted: [String] = []
                    while let name = ctx.arguments.next() { wanted.append(name.text.lowercased()) }
                    var items: [RESPValue] = []
                    for c in table.commands where wanted.isEmpty || wanted.contains(c.name) {
                        items.append(.bulk(c.name))
                        items.append(.map([.bulk("summary"), .bulk(c.summary), .bulk("since"), .bulk(SluiceVersion.current), .bulk("group"), .bulk("sluice")]))
                    }
                    RESPValue.map(items).encode(into: &out)
                } else {
                    throw CommandError("unknown subcommand '\(sub.text)'. Try COMMAND COUNT, DOCS, INFO, LIST.")
                }
                return .done
            },
        ]
    }

    static func commandInfo(_ c: Command) -> RESPValue {
        // [name, arity, flags, first key, last key, step]
        let hasKey = c.name.contains("get") || c.name.contains("set") || ["del", "exists", "ttl", "pttl"].contains(c.name)
        return .array([.bulk(c.name), .integer(c.arity), .array([]), .integer(hasKey ? 1 : 0), .integer(hasKey ? 1 : 0), .integer(hasKey ? 1 : 0)])
    }

    static func settings(_ c: ServerConfiguration) -> [(String, String)] {
        return [
            ("bind", c.host), ("port", String(c.port)),
            ("maxmemory", String(c.l1MaxMemory)), ("maxmemory-policy", "s3fifo"),
            ("save", ""), ("appendonly", "no"),
            ("databases", "1"), ("proto-max-bulk-len", String(c.limits.maxBulkLength)),
        ]
    }

    /// Glob with '*' and '?', in time linear in pattern × name: on a mismatch it backtracks only
    /// to the last '*' (the recursive matcher this replaces was exponential in the number of
    /// stars, the bug of Redis's CVE-2022-36021).
    static func glob(_ pattern: String, _ name: String) -> Bool {
        let p = Array(pattern.utf8), s = Array(name.utf8)
        var i = 0, j = 0
        var star = -1, resume = 0
        while j < s.count {
            if i < p.count && (p[i] == UInt8(ascii: "?") || (p[i] == s[j] && p[i] != UInt8(ascii: "*"))) {
                i += 1
                j += 1
            } else if i < p.count && p[i] == UInt8(ascii: "*") {
                star = i
                resume = j
                i += 1
            } else if star >= 0 {
                // Let the last star take one more character and try again from there.
                i = star + 1
                resume += 1
                j = resume
            } else {
                return false
            }
        }
        while i < p.count && p[i] == UInt8(ascii: "*") { i += 1 }
        return i == p.count
    }
}
