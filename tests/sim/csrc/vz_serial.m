/*
 * Fake serial ports: VZFileHandleSerialPortAttachment, VZFileSerialPortAttachment and
 * VZVirtioConsoleDeviceSerialPortConfiguration (macOS 11).
 *
 * VZFileHandleSerialPortAttachment: the framework READS what the guest receives from
 * fileHandleForReading and WRITES the guest's output to fileHandleForWriting; either
 * may be nil. VZFileSerialPortAttachment is output only: it creates or opens the file
 * (appending, or truncating it) when initialized, and fails with an NSError when it
 * cannot.
 */
#include <errno.h>
#include <fcntl.h>
#include <string.h>
#include <unistd.h>
#include "sim_vz.h"

static void write_all(int fd, NSData *data)
{
    const char *bytes = [data bytes];
    size_t left = [data length];
    while (left > 0) {
        ssize_t n = write(fd, bytes, left);
        if (n < 0 && errno == EINTR) continue;
        if (n <= 0) return; /* the guest's output is dropped, as VZ does */
        bytes += n;
        left -= (size_t)n;
    }
}

@implementation VZSerialPortAttachment
- (void)sim_writeGuestOutput:(NSData *)data { (void)data; }
@end

@implementation VZFileHandleSerialPortAttachment
@synthesize fileHandleForReading = _fileHandleForReading;
@synthesize fileHandleForWriting = _fileHandleForWriting;

- (instancetype)initWithFileHandleForReading:(NSFileHandle *)fileHandleForReading
                        fileHandleForWriting:(NSFileHandle *)fileHandleForWriting
{
    if ((self = [super init]) == nil) return nil;
    _fileHandleForReading = [fileHandleForReading retain];
    _fileHandleForWriting = [fileHandleForWriting retain];
    return self;
}

- (void)sim_writeGuestOutput:(NSData *)data
{
    if (_fileHandleForWriting != nil) write_all([_fileHandleForWriting fileDescriptor], data);
}

- (void)dealloc
{
    [_fileHandleForReading release];
    [_fileHandleForWriting release];
    [super dealloc];
}
@end

@implementation VZFileSerialPortAttachment
@synthesize URL = _URL;
@synthesize append = _append;

- (instancetype)initWithURL:(NSURL *)URL append:(BOOL)shouldAppend error:(NSError **)error
{
    if (URL == nil || ![URL isFileURL])
        SIM_RAISE(@"The URL %@ is not a file URL (VZFileSerialPortAttachment URL).", URL);
    if ((self = [super init]) == nil) return nil;
    _fd = -1;
    int flags = O_WRONLY | O_CREAT | O_CLOEXEC | (shouldAppend ? O_APPEND : O_TRUNC);
    int fd = open([[URL path] fileSystemRepresentation], flags, 0644);
    if (fd < 0) {
        int err = errno;
        if (error != NULL) {
            NSString *reason = [NSString stringWithFormat:@"Cannot open %@: %s", [URL path],
                                                          strerror(err)];
            *error = [NSError errorWithDomain:NSPOSIXErrorDomain
                                         code:err
                                     userInfo:@{ NSLocalizedDescriptionKey : reason }];
        }
        [self release];
        return nil;
    }
    _fd = fd;
    _URL = [URL copy];
    _append = shouldAppend;
    return self;
}

- (void)sim_writeGuestOutput:(NSData *)data
{
    if (_fd >= 0) write_all(_fd, data);
}

- (void)dealloc
{
    if (_fd >= 0) close(_fd);
    [_URL release];
    [super dealloc];
}
@end

@implementation VZSerialPortConfiguration
@synthesize attachment = _attachment;

- (void)setAttachment:(VZSerialPortAttachment *)attachment
{
    if (attachment != nil && ![attachment isKindOfClass:[VZSerialPortAttachment class]])
        SIM_RAISE(@"The attachment is not a VZSerialPortAttachment.");
    [attachment retain];
    [_attachment release];
    _attachment = attachment;
}

- (id)copyWithZone:(NSZone *)zone
{
    VZSerialPortConfiguration *copy = [[[self class] allocWithZone:zone] init];
    copy.attachment = _attachment;
    return copy;
}

/* VZ documents no validation rule for a serial port: a port without an attachment is
 * a port nobody listens to. */
- (NSString *)sim_invalidReason { return nil; }

- (void)dealloc
{
    [_attachment release];
    [super dealloc];
}
@end

@implementation VZVirtioConsoleDeviceSerialPortConfiguration
- (instancetype)init { return [super init]; }
@end
