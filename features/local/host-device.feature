@format:host @protocol:host_device @spec:host.linux.hard-disk
Feature: Host devices: a whole block device used as a disk
  The manual's "Using host drives": on Linux a host device's file name is used instead of an
  image file name, given the privileges to open it; a hard disk is used whole, and read-only
  access is the safe choice. QEMU's host_device driver (host_cdrom for a CD-ROM drive) takes the
  size from the device. Loop devices stand in for disks here (losetup, as root); where none can
  be made the scenarios are not applicable.

  Scenario Outline: the implementation opens a loop device as <name>, sized by the device
    Given a 2 MiB loop device with 64 KiB of pattern 0x5a at offset 1 MiB
    Then the implementation shows the device named '<name>' with format "<format>" and a virtual size of 2 MiB
    And the implementation reads 64 KiB of pattern 0x5a at offset 1 MiB of the device named '<name>'

    Examples:
      | name                                             | format      |
      | {dev}                                            | raw         |
      | host_device:{dev}                                | raw         |
      | json:{"driver":"host_device","filename":"{dev}"} | host_device |

  @spec:host.linux.cdrom
  Scenario: a drive without a disc opened as host_cdrom has its size but no medium to read
    # a loop device answers no CD-ROM drive status, which QEMU takes for "no disc loaded"
    Given a 2 MiB loop device with 64 KiB of pattern 0x5a at offset 1 MiB
    Then the implementation shows the device named 'json:{"driver":"host_cdrom","filename":"{dev}"}' with format "host_cdrom" and a virtual size of 2 MiB
    When the implementation tries to "read 4 KiB of" the device named 'json:{"driver":"host_cdrom","filename":"{dev}"}'
    Then the device attempt is refused with 'No medium found'

  Scenario: what the implementation writes to the device, the oracle reads from it
    Given a 2 MiB loop device
    When the implementation writes 128 KiB of pattern 0x21 at offset 512 KiB of the device named '{dev}'
    Then the oracle reads 128 KiB of pattern 0x21 at offset 512 KiB of the device named '{dev}'

  Scenario: a device opened read-only, as the manual recommends, refuses writes
    Given a 2 MiB loop device with 4 KiB of pattern 0x5a at offset 0
    When the implementation tries to "write 4 KiB to" the device named 'json:{"driver":"raw","read-only":true,"file":{"driver":"host_device","filename":"{dev}"}}'
    Then the device attempt is refused with 'read-only'
    And the oracle reads 4 KiB of pattern 0x5a at offset 0 of the device named '{dev}'

  Scenario: a device keeps its size
    Given a 2 MiB loop device
    When the implementation tries to "grow by 1 MiB" the device named '{dev}'
    Then the device attempt is refused with 'Cannot resize device files'

  Scenario Outline: <what> is refused
    Given a 1 MiB loop device
    When the implementation tries to "read the info of" the device named '<name>'
    Then the device attempt is refused with "<error>"

    Examples:
      | what                              | name                                      | error                                                                  |
      | the file driver on a device       | json:{"driver":"file","filename":"{dev}"} | 'file' driver requires '{dev}' to be a regular file                    |
      | host_device on a regular file     | host_device:{file}                        | 'host_device' driver requires '{file}' to be either a character or block device |
      | an absent device                  | host_device:/dev/qbc-no-such-device       | Could not open '/dev/qbc-no-such-device': No such file or directory    |

  @spec:host.linux.floppy
  Scenario: the host floppy driver, which the manual calls deprecated, is gone
    # QEMU removed host_floppy before 7.2; a floppy drive is now opened with host_device
    When the image is opened by the name 'json:{"driver":"host_floppy","filename":"/dev/fd0"}'
    Then opening is refused with "Unknown driver 'host_floppy'"

  # The manual's Windows and Mac OS X drive names mean host drives only on those hosts. On a
  # Linux host (this suite's) they are ordinary names: what each one is taken for is stated here.
  @spec:host.windows.cdrom @spec:host.windows.hard-disk
  Scenario Outline: on a Linux host the Windows drive name <name> is <what>
    When the image is opened by the name '<name>'
    Then opening is refused with "<error>"

    Examples:
      | name               | what                                  | error                                                  |
      | d:                 | a protocol prefix                     | Unknown protocol 'd'                                   |
      | \\.\d:             | a protocol prefix                     | Unknown protocol '\\.\d'                               |
      | \\.\PhysicalDrive0 | a relative file name that is absent   | Could not open '\\.\PhysicalDrive0': No such file or directory |
