/*
 * The Apple-silicon-only part of the fake framework: Rosetta for Linux
 * (vz_rosetta.m), save/restore (vz_save_restore.m) and the macOS start options
 * (vz_start_options.m). On a Mac these exist only on arm64 (`#ifdef __arm64__` in
 * Apple's headers); the simulator, an x86_64 Linux program, plays an Apple-silicon Mac
 * so that the crate's arm64 code paths run in tests.
 *
 * Selectors and types: vz-api.tsv. Behaviour: Apple's headers (VZVirtualMachine.h,
 * VZLinuxRosettaDirectoryShare.h, VZLinuxRosetta*CachingOptions.h,
 * VZMacOSVirtualMachineStartOptions.h), cited where each rule is enforced.
 */
#ifndef ARCBOX_VZ_SIM_VZ_ARM64_H
#define ARCBOX_VZ_SIM_VZ_ARM64_H

#include "sim_vz_runtime.h"

/* VZVirtualMachineState values added in macOS 14 (vz-api.tsv, `state` row). */
enum {
    SimVZVirtualMachineStateSaving = 8,
    SimVZVirtualMachineStateRestoring = 9,
};

/* VZErrorCode values added in macOS 14 (vz-api.tsv enum rows). */
enum {
    SimVZErrorSave = 11,
    SimVZErrorRestore = 12,
};

/* ---- Rosetta (vz_rosetta.m) ---- */

/* VZLinuxRosettaAvailability (vz-api.tsv): NotSupported=0 NotInstalled=1 Installed=2. */
enum {
    SimRosettaNotSupported = 0,
    SimRosettaNotInstalled = 1,
    SimRosettaInstalled = 2,
};

@interface VZLinuxRosettaCachingOptions : SimObject
@end

@interface VZLinuxRosettaUnixSocketCachingOptions : VZLinuxRosettaCachingOptions
{
    NSString *_path;
}
- (instancetype)initWithPath:(NSString *)path error:(NSError **)error;
- (instancetype)init;
@property (nonatomic, readonly, copy) NSString *path;
+ (NSUInteger)maximumPathLength;
@end

@interface VZLinuxRosettaAbstractSocketCachingOptions : VZLinuxRosettaCachingOptions
{
    NSString *_name;
}
- (instancetype)initWithName:(NSString *)name error:(NSError **)error;
@property (nonatomic, readonly, copy) NSString *name;
+ (NSUInteger)maximumNameLength;
@end

@interface VZLinuxRosettaDirectoryShare : VZDirectoryShare
{
    VZLinuxRosettaCachingOptions *_options;
}
- (instancetype)initWithError:(NSError **)error;
+ (void)installRosettaWithCompletionHandler:(void (^)(NSError *error))completionHandler;
+ (NSInteger)availability;
@property (nonatomic, strong) VZLinuxRosettaCachingOptions *options;
@end

/* Control hooks (tests/sim/src/arm64.rs). */
void sim_rosetta_set_availability(long availability);
/* How the next installs end: 0 succeed (Rosetta becomes Installed), > 0 fail with
 * that VZErrorDomain code, -1 the framework releases the handler without calling it. */
void sim_rosetta_set_install_outcome(long outcome);
long sim_rosetta_install_calls(void);
/* The caching options of every live Rosetta share, one line each:
 * "none", "unix:<path>" or "abstract:<name>". Returns the length needed. */
size_t sim_rosetta_describe_shares(char *buffer, size_t size);

/* ---- save/restore (vz_save_restore.m) ---- */

@interface VZVirtualMachineConfiguration (SaveRestore)
- (BOOL)validateSaveRestoreSupportWithError:(NSError **)error;
@end

@interface VZVirtualMachine (SaveRestore)
- (void)saveMachineStateToURL:(NSURL *)saveFileURL
            completionHandler:(void (^)(NSError *errorOrNil))completionHandler;
- (void)restoreMachineStateFromURL:(NSURL *)saveFileURL
                 completionHandler:(void (^)(NSError *errorOrNil))completionHandler;
@end

/* Control hooks: the next save (restore) fails with this VZErrorDomain code after
 * the file work, as when the disk fills up or the host refuses (0: no failure). */
void sim_save_fail_next(long code);
void sim_restore_fail_next(long code);

/* ---- start options (vz_start_options.m) ---- */

@interface VZMacOSVirtualMachineStartOptions : VZVirtualMachineStartOptions
{
    BOOL _startUpFromMacOSRecovery;
}
- (instancetype)init;
@property (nonatomic) BOOL startUpFromMacOSRecovery;
@end

/* What the last -startWithOptions:completionHandler: received: 0 nothing yet (or
 * reset), 1 VZVirtualMachineStartOptions, 2 VZMacOSVirtualMachineStartOptions,
 * 3 the same with startUpFromMacOSRecovery = YES. */
long sim_last_start_options(void);
void sim_reset_last_start_options(void);

#endif
