/*
 * The fake VZMacOSInstaller (macOS 12, Apple silicon only on a Mac). Selectors and
 * types: vz-api.tsv; flows.md (a) steps 9 to 11.
 *
 * What Apple promises, and the fake enforces:
 * - +new and -init are unavailable (header): they raise;
 * - -initWithVirtualMachine:restoreImageURL: and -installWithCompletionHandler: are
 *   bound to the VM queue (header; off it they trap: trycua/cua#2696);
 * - init raises when the machine's platform is not a VZMacPlatformConfiguration or
 *   the URL is not a file URL (vz-api.tsv THROWS);
 * - install raises when called a second time on the same installer, and when the
 *   progress was cancelled before the install began (vz-api.tsv THROWS);
 * - the completion handler runs on the VM queue, later, never inline (error nil =
 *   success);
 * - the progress is an NSProgress the framework updates from threads of its own:
 *   here a private worker queue, so `fractionCompleted` notifications never come on
 *   the VM queue; -cancel works from any thread and ends the install with an error;
 * - the installer keeps its virtual machine alive (header: readonly strong).
 *
 * Apple leaves open, so the seed chooses (sim_schedule.c):
 * - how many steps the progress takes (3 to 12) and how long each is (1 to 4 ms);
 * - whether the machine shows Running while it installs (then Stopped again before
 *   the completion handler: flows.md (a) says to read the state after completion);
 * - whether the install keeps the installer alive: when it does not and the client
 *   releases it mid-install, the next step messages a zombie and the process aborts;
 * - which error a cancelled install gets: VZErrorOperationCancelled (9, macOS 13) or
 *   NSCocoaErrorDomain NSUserCancelledError (3072);
 * - how long after the last step the completion handler comes.
 *
 * Not documented, and strict here so a client that skips the check is caught: an
 * install on a machine that is not stopped raises (the header only says the machine
 * must be stopped).
 *
 * What an install reads and writes: the restore image must be a fake IPSW
 * (vz_macos_guest.m); otherwise, or without a disk image as a storage device, the
 * install fails with VZErrorInstallationFailed (10007; VZErrorInternal 1 before
 * macOS 13). A successful install writes "SIMMACOS build=<build>" at the start of
 * the first disk image (sim_installed_build reads it back).
 *
 * Test hooks: sim_installer_fail_next(code), or $ARCBOX_VZ_SIM_INSTALL_FAIL=code for
 * a child process (the examples), make installs fail half way with that code.
 */
#include <Block.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include "sim_vz_arm64.h"

/* Private to vz_virtual_machine.m: changes `state` with its KVO notification. */
@interface VZVirtualMachine (SimInstallerPrivate)
- (void)sim_setState:(NSInteger)state;
@end

#define INSTALLED_MAGIC "SIMMACOS build="
#define INSTALLED_SIZE 64
/* A fake IPSW is a few lines: read no more than this. */
#define IPSW_MAX 4096

static long fail_next;
static long installs;

void sim_installer_fail_next(long code) { __atomic_store_n(&fail_next, code, __ATOMIC_SEQ_CST); }
long sim_installer_installs(void) { return __atomic_load_n(&installs, __ATOMIC_SEQ_CST); }

size_t sim_installed_build(const char *disk_path, char *buffer, size_t size)
{
    char block[INSTALLED_SIZE + 1] = { 0 };
    int fd = open(disk_path, O_RDONLY | O_CLOEXEC | O_NONBLOCK);
    if (fd >= 0) {
        ssize_t n = pread(fd, block, INSTALLED_SIZE, 0);
        close(fd);
        if (n < 0) block[0] = 0;
    }
    const char *build = "";
    if (strncmp(block, INSTALLED_MAGIC, strlen(INSTALLED_MAGIC)) == 0) {
        build = block + strlen(INSTALLED_MAGIC);
        block[strcspn(block, "\n")] = 0;
    }
    size_t len = strlen(build);
    if (size > 0) {
        size_t copy = len < size - 1 ? len : size - 1;
        memcpy(buffer, build, copy);
        buffer[copy] = 0;
    }
    return len;
}

static NSInteger installation_failed_code(void)
{
    return sim_macos_at_least(13, 0) ? 10007 : VZErrorInternal;
}

/* ---- the progress ---- */

/* An NSProgress whose counts the fake sets from its worker thread, notifying
 * `fractionCompleted` observers on that thread, as the framework does. */
@interface SimInstallProgress : NSProgress
{
    pthread_mutex_t _lock;
    int64_t _completed, _total;
    BOOL _cancelled;
}
- (instancetype)sim_initWithTotal:(int64_t)total;
- (void)sim_setCompleted:(int64_t)completed;
@end

@implementation SimInstallProgress

- (instancetype)sim_initWithTotal:(int64_t)total
{
    if ((self = [super initWithParent:nil userInfo:nil]) == nil) return nil;
    pthread_mutex_init(&_lock, NULL);
    _total = total;
    return self;
}

- (double)fractionCompleted
{
    pthread_mutex_lock(&_lock);
    double f = _total > 0 ? (double)_completed / (double)_total : 0.0;
    pthread_mutex_unlock(&_lock);
    return f;
}

- (int64_t)completedUnitCount
{
    pthread_mutex_lock(&_lock);
    int64_t n = _completed;
    pthread_mutex_unlock(&_lock);
    return n;
}

- (int64_t)totalUnitCount { return _total; }
- (BOOL)isCancellable { return YES; }

- (BOOL)isCancelled
{
    pthread_mutex_lock(&_lock);
    BOOL c = _cancelled;
    pthread_mutex_unlock(&_lock);
    return c;
}

- (BOOL)isFinished
{
    pthread_mutex_lock(&_lock);
    BOOL f = _total > 0 && _completed >= _total;
    pthread_mutex_unlock(&_lock);
    return f;
}

- (void)cancel
{
    [self willChangeValueForKey:@"cancelled"];
    pthread_mutex_lock(&_lock);
    _cancelled = YES;
    pthread_mutex_unlock(&_lock);
    [self didChangeValueForKey:@"cancelled"];
}

- (void)sim_setCompleted:(int64_t)completed
{
    [self willChangeValueForKey:@"fractionCompleted"];
    [self willChangeValueForKey:@"completedUnitCount"];
    pthread_mutex_lock(&_lock);
    _completed = completed;
    pthread_mutex_unlock(&_lock);
    [self didChangeValueForKey:@"completedUnitCount"];
    [self didChangeValueForKey:@"fractionCompleted"];
}

- (void)dealloc
{
    pthread_mutex_destroy(&_lock);
    [super dealloc];
}

@end

/* ---- the install, step by step ---- */

struct install_job {
    VZMacOSInstaller *installer; /* retained only when holds_installer */
    BOOL holds_installer;
    VZVirtualMachine *vm;          /* sim_hold until the handler has run */
    SimInstallProgress *progress;  /* retained */
    void (^handler)(NSError *);
    int64_t step, total, fail_at;
    long fail_code;
    BOOL through_running;
    char *disk;  /* the first disk image, or NULL */
    char *build; /* from the restore image, or NULL when it is not one */
    dispatch_queue_t worker; /* the framework's own thread for this install */
    NSError *error; /* retained; what the handler gets */
};

static void job_free(struct install_job *job)
{
    if (job->holds_installer) [job->installer release];
    [job->progress release];
    [job->error release];
    _Block_release(job->handler);
    free(job->disk);
    free(job->build);
    dispatch_release(job->worker);
    free(job);
}

/* On the VM queue: the machine is Stopped again, then the handler. */
static void job_complete(void *ctx)
{
    struct install_job *job = ctx;
    void *pool = objc_autoreleasePoolPush();
    VZVirtualMachine *vm = job->vm;
    if (job->through_running) [vm sim_setState:VZVirtualMachineStateStopped];
    [vm sim_enterCallback];
    job->handler(job->error);
    [vm sim_exitCallback];
    job_free(job);
    [vm sim_unhold];
    objc_autoreleasePoolPop(pool);
}

static void job_finish(struct install_job *job, NSError *error)
{
    job->error = [error retain];
    sim_after_ms([job->vm sim_queue], sim_choose(5), job, job_complete);
}

static BOOL write_installed(const char *disk, const char *build)
{
    char block[INSTALLED_SIZE] = { 0 };
    snprintf(block, sizeof block, INSTALLED_MAGIC "%s\n", build);
    int fd = open(disk, O_WRONLY | O_CLOEXEC | O_NONBLOCK);
    if (fd < 0) return NO;
    BOOL ok = pwrite(fd, block, sizeof block, 0) == (ssize_t)sizeof block;
    close(fd);
    return ok;
}

static NSError *cancelled_error(void)
{
    if (sim_macos_at_least(13, 0) && sim_choose(2) == 0)
        return sim_vz_error(9, @"The operation was cancelled.");
    return [NSError errorWithDomain:NSCocoaErrorDomain code:3072 userInfo:nil];
}

/* On the worker queue: one step of the progress. */
static void job_step(void *ctx)
{
    struct install_job *job = ctx;
    void *pool = objc_autoreleasePoolPush();
    /* The framework's own state lives in the installer: a released one is a zombie
     * here unless the install holds it. */
    SimInstallProgress *progress = (SimInstallProgress *)[job->installer progress];
    if ([progress isCancelled]) {
        job_finish(job, cancelled_error());
    } else if (job->fail_code != 0 && job->step == job->fail_at) {
        job_finish(job, sim_vz_error(job->fail_code, @"The installation failed."));
    } else {
        job->step++;
        [progress sim_setCompleted:job->step];
        if (job->step < job->total) {
            sim_after_ms(job->worker, 1 + sim_choose(4), job, job_step);
        } else if (!write_installed(job->disk, job->build)) {
            job_finish(job, sim_vz_error(installation_failed_code(),
                                         @"The disk image could not be written."));
        } else {
            job_finish(job, nil);
        }
    }
    objc_autoreleasePoolPop(pool);
}

/* On the VM queue, a work item after install: the machine may show Running. */
static void job_begin(void *ctx)
{
    struct install_job *job = ctx;
    void *pool = objc_autoreleasePoolPush();
    if (job->through_running) [job->vm sim_setState:VZVirtualMachineStateRunning];
    sim_after_ms(job->worker, 1 + sim_choose(4), job, job_step);
    objc_autoreleasePoolPop(pool);
}

/* The build of a fake IPSW, or NULL when the file is not one. */
static char *read_build(NSURL *url)
{
    char text[IPSW_MAX + 1] = { 0 };
    int fd = open([[url path] fileSystemRepresentation], O_RDONLY | O_CLOEXEC | O_NONBLOCK);
    if (fd < 0) return NULL;
    ssize_t n = read(fd, text, IPSW_MAX);
    close(fd);
    size_t magic = strlen(SIM_IPSW_MAGIC);
    if (n < (ssize_t)magic || memcmp(text, SIM_IPSW_MAGIC, magic) != 0) return NULL;
    char *line = strstr(text + magic, "build=");
    if (line == NULL) return NULL;
    line += strlen("build=");
    return strndup(line, strcspn(line, "\n"));
}

/* The path of the first storage device's disk image, or NULL. */
static char *first_disk(VZVirtualMachine *vm)
{
    NSArray *devices = [[vm sim_configuration] storageDevices];
    if ([devices count] == 0) return NULL;
    id attachment = [[devices objectAtIndex:0] attachment];
    if (![attachment isKindOfClass:[VZDiskImageStorageDeviceAttachment class]]) return NULL;
    return strdup([[[attachment URL] path] fileSystemRepresentation]);
}

@implementation VZMacOSInstaller
@synthesize progress = _progress;
@synthesize virtualMachine = _virtualMachine;
@synthesize restoreImageURL = _restoreImageURL;

+ (instancetype)new
{
    SIM_RAISE(@"+[VZMacOSInstaller new] is unavailable");
    return nil;
}

- (instancetype)init
{
    SIM_RAISE(@"-[VZMacOSInstaller init] is unavailable");
    return nil;
}

- (instancetype)initWithVirtualMachine:(VZVirtualMachine *)virtualMachine
                       restoreImageURL:(NSURL *)restoreImageURL
{
    if (virtualMachine == nil)
        SIM_RAISE(@"-[VZMacOSInstaller initWithVirtualMachine:restoreImageURL:]: nil machine");
    [virtualMachine sim_assertQueue:"-[VZMacOSInstaller initWithVirtualMachine:restoreImageURL:]"];
    if (restoreImageURL == nil || ![restoreImageURL isFileURL])
        SIM_RAISE(@"-[VZMacOSInstaller initWithVirtualMachine:restoreImageURL:]: the restore "
                   "image URL must be a file URL");
    if (![[[virtualMachine sim_configuration] platform]
            isKindOfClass:[VZMacPlatformConfiguration class]])
        SIM_RAISE(@"-[VZMacOSInstaller initWithVirtualMachine:restoreImageURL:]: the virtual "
                   "machine's platform is not a VZMacPlatformConfiguration");
    if ((self = [super init]) == nil) return nil;
    _virtualMachine = [virtualMachine retain];
    _restoreImageURL = [restoreImageURL copy];
    _progress = [[SimInstallProgress alloc] sim_initWithTotal:(int64_t)(3 + sim_choose(10))];
    return self;
}

- (void)installWithCompletionHandler:(void (^)(NSError *))completionHandler
{
    [_virtualMachine sim_assertQueue:"-[VZMacOSInstaller installWithCompletionHandler:]"];
    if (completionHandler == NULL)
        SIM_RAISE(@"-[VZMacOSInstaller installWithCompletionHandler:]: nil handler");
    if (_installCalled)
        SIM_RAISE(@"-[VZMacOSInstaller installWithCompletionHandler:] called a second time");
    if ([_progress isCancelled])
        SIM_RAISE(@"-[VZMacOSInstaller installWithCompletionHandler:]: the progress was "
                   "cancelled before the install began");
    if ([_virtualMachine state] != VZVirtualMachineStateStopped)
        SIM_RAISE(@"-[VZMacOSInstaller installWithCompletionHandler:]: the virtual machine is "
                   "not stopped (undocumented; the simulator raises)");
    _installCalled = YES;
    __atomic_add_fetch(&installs, 1, __ATOMIC_SEQ_CST);

    struct install_job *job = calloc(1, sizeof *job);
    if (job == NULL) sim_fatal("out of memory");
    job->holds_installer = sim_choose(2) == 0;
    job->installer = job->holds_installer ? [self retain] : self;
    job->vm = [_virtualMachine sim_hold];
    job->progress = [(SimInstallProgress *)_progress retain];
    job->handler = _Block_copy(completionHandler);
    job->worker = dispatch_queue_create("sim.macos-installer", NULL);
    job->total = [_progress totalUnitCount];
    job->fail_code = __atomic_exchange_n(&fail_next, 0, __ATOMIC_SEQ_CST);
    const char *env_fail = getenv("ARCBOX_VZ_SIM_INSTALL_FAIL");
    if (job->fail_code == 0 && env_fail != NULL) job->fail_code = strtol(env_fail, NULL, 10);
    job->fail_at = job->total / 2;
    job->disk = first_disk(_virtualMachine);
    job->build = read_build(_restoreImageURL);
    if (job->build == NULL || job->disk == NULL) {
        NSString *why = job->build == NULL ? @"The restore image is not valid."
                                           : @"The virtual machine has no disk image.";
        job->error = [sim_vz_error(installation_failed_code(), why) retain];
        sim_after_ms([_virtualMachine sim_queue], sim_choose(5), job, job_complete);
        return;
    }
    job->through_running = sim_choose(2) == 0;
    sim_after_ms([_virtualMachine sim_queue], 0, job, job_begin);
}

- (void)dealloc
{
    [_virtualMachine release];
    [_restoreImageURL release];
    [_progress release];
    [super dealloc];
}

@end
