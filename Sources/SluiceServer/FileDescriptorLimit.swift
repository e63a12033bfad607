#if canImport(Glibc)
import Glibc
#endif
import Logging

/// The process's open-files limit: raised at start-up (as Redis does) so that `--maxclients`
/// connections fit beside Sluice's own descriptors; where it cannot be, fewer clients are
/// allowed, so that a flood of connections is refused with an error rather than exhausting the
/// descriptors (after which nothing — not even a new event loop — could be opened).
enum FileDescriptorLimit {
    /// Returns how many clients fit.
    static func raise(toHold maxClients: Int, reserved: Int, logger: Logger) -> Int {
        var limit = rlimit()
        guard getrlimit(Int32(RLIMIT_NOFILE.rawValue), &limit) == 0 else { return maxClients }
        let wanted = rlim_t(maxClients + reserved)
        if limit.rlim_cur < wanted {
            var raised = limit
            raised.rlim_cur = min(wanted, limit.rlim_max)
            if setrlimit(Int32(RLIMIT_NOFILE.rawValue), &raised) == 0 { limit = raised }
        }
        let fits = max(Int(limit.rlim_cur) - reserved, 1)
        if fits < maxClients {
            logger.warning("open-files limit too low for --maxclients; allowing fewer clients", metadata: [
                "maxclients": "\(fits)", "asked": "\(maxClients)", "open_files_limit": "\(limit.rlim_cur)",
            ])
            return fits
        }
        return maxClients
    }
}
