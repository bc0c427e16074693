@format:locking @protocol:file @spec:locking
Feature: Image locking keeps conflicting users of an image out, whoever they are
  The manual's "Disk image file locking": QEMU protects image files from conflicting concurrent
  access; of several users that open an image with conflicting access modes, all but the first
  get an error. On Linux the file protocol does it with OFD locks, one byte per permission taken
  (100+N) or refused to others (200+N). Every scenario runs in both directions: the
  implementation under test holds the image and the oracle is kept out, then the other way round,
  so the reference and QEMU are proven to see each other's locks. qcow2 is the format of these
  scenarios because a format with metadata refuses to share writes; raw shares them.

  @spec:locking.bytes
  Scenario Outline: a qcow2 image held for writing by the <holder> keeps the <other> out of "<action>" until it is released
    Given a 1 MiB qcow2 image
    When the <holder> holds the image open for "writing"
    And the <other> tries to "<action>"
    Then the attempt is refused with '<error>'
    And the refusal asks whether another process is using the image
    When the <holder> releases the image
    And the <other> tries to "<action>"
    Then the attempt succeeds

    Examples:
      | holder         | other          | action        | error                             |
      | implementation | oracle         | read its info | Failed to get shared "write" lock |
      | implementation | oracle         | write to it   | Failed to get "write" lock        |
      | oracle         | implementation | read it       | Failed to get shared "write" lock |
      | oracle         | implementation | write to it   | Failed to get "write" lock        |

  # The bytes are read from /proc/locks' OFDLCK entries only: a POSIX lock (the manual's
  # fallback) would not count, so this also shows that OFD locks are the ones taken.
  @spec:locking.bytes @spec:locking.ofd
  Scenario Outline: the lock bytes of a qcow2 image the implementation holds for <how>
    Given a 1 MiB qcow2 image
    When the implementation holds the image open for "<how>"
    Then the image file has the lock bytes "<bytes>"
    When the implementation releases the image
    Then the image file has the lock bytes "none"

    # 100 consistent read, 101 write, 103 resize held; 201 write, 203 resize not shared
    Examples:
      | how                      | bytes               |
      | writing                  | 100 101 103 201 203 |
      | reading with force-share | 100                 |

  Scenario Outline: while the <holder> reads a qcow2 image, the <other>'s "<action>" <outcome>
    Given a 1 MiB qcow2 image
    When the <holder> holds the image open for "reading"
    And the <other> tries to "<action>"
    Then the attempt <outcome>

    Examples:
      | holder         | other          | action      | outcome                                      |
      | implementation | oracle         | read it     | succeeds                                     |
      | oracle         | implementation | write to it | is refused with 'Failed to get "write" lock' |

  Scenario Outline: force-share (-U) lets the <other> "<action>" while the <holder> writes a qcow2 image
    Given a 1 MiB qcow2 image
    When the <holder> holds the image open for "writing"
    And the <other> tries to "<action>"
    Then the attempt succeeds

    Examples:
      | holder         | other          | action                         |
      | implementation | oracle         | read it with force-share       |
      | oracle         | implementation | read its info with force-share |

  Scenario Outline: creating an image over a qcow2 image the <holder> writes is refused for the <other>
    Given a 1 MiB qcow2 image
    When the <holder> holds the image open for "writing"
    And the <other> tries to "create a qcow2 image over it"
    Then the attempt is refused with 'Failed to get "write" lock'

    Examples:
      | holder | other          |
      | oracle | implementation |

  Scenario: force-share is for read-only opens only
    Given a 1 MiB qcow2 image
    When the implementation tries to "write to it with force-share"
    Then the attempt is refused with 'force-share=on can only be used with read-only images'

  @spec:locking.locking
  Scenario Outline: file.locking=<mode> <verdict> the <other>'s write to a qcow2 image the <holder> writes
    Given a 1 MiB qcow2 image
    When the <holder> holds the image open for "writing"
    And the <other> tries to "write to it with locking=<mode>"
    Then the attempt <outcome>

    Examples:
      | mode | verdict      | holder         | other          | outcome                                      |
      | off  | lets through | implementation | oracle         | succeeds                                     |
      | off  | lets through | oracle         | implementation | succeeds                                     |

  Scenario: a raw image held for writing by the oracle does not keep the implementation's write out
    # raw has no metadata to protect: qemu-io shares the write permission on a raw image
    Given a 1 MiB raw image
    When the oracle holds the image open for "writing"
    And the implementation tries to "write to it"
    Then the attempt succeeds

  @spec:locking.bytes
  Scenario Outline: a qcow2 image open for <how> locks its external data file as QEMU does
    # QEMU locks the data file as a node of its own: read (and write and resize for a writer)
    # held, resize not shared. Raw users of the data file may still read and write it.
    Given a 1 MiB qcow2 image created with "data_file=image.data"
    When the implementation holds the image open for "<how>"
    Then its data file "image.data" has the lock bytes "<bytes>"
    When the implementation releases the image
    Then its data file "image.data" has the lock bytes "none"
    Examples:
      | how     | bytes           |
      | writing | 100 101 103 203 |
      | reading | 100 203         |

  @spec:locking.bytes
  Scenario Outline: while the <holder> reads a qcow2 image, the <other> cannot resize its external data file
    Given a 1 MiB qcow2 image created with "data_file=image.data"
    When the <holder> holds the image open for "reading"
    And the <other> tries to "resize its data file"
    Then the attempt is refused with 'Failed to get "resize" lock'
    When the <holder> releases the image
    And the <other> tries to "resize its data file"
    Then the attempt succeeds
    Examples:
      | holder         | other          |
      | implementation | oracle         |
      | oracle         | implementation |

  @format:nbd @protocol:nbd @spec:nbd.qemu-nbd
  Scenario Outline: a qcow2 image exported writable by the <server>'s NBD server keeps the <other> out until the server stops
    Given a 1 MiB qcow2 image
    When the <server> exports the image over NBD on "a unix socket" as "disk"
    And the <other> tries to "write to it"
    Then the attempt is refused with 'Failed to get "write" lock'
    When the NBD export is stopped
    And the <other> tries to "write to it"
    Then the attempt succeeds

    Examples:
      | server         | other          |
      | implementation | oracle         |
      | oracle         | implementation |

  @format:nbd @protocol:nbd @spec:nbd.qemu-nbd
  Scenario Outline: a raw image exported by the <server>'s NBD server may be written by the <other> but not resized
    # raw shares writes, but an export's size is fixed while it is served: qemu-nbd keeps
    # the resize permission from others (lock byte 203) even for raw
    Given a 1 MiB raw image
    When the <server> exports the image over NBD on "a unix socket" as "disk"
    And the <other> tries to "resize it"
    Then the attempt is refused with 'Failed to get "resize" lock'
    When the <other> tries to "write to it"
    Then the attempt succeeds
    When the NBD export is stopped
    And the <other> tries to "resize it"
    Then the attempt succeeds

    Examples:
      | server         | other          |
      | implementation | oracle         |
      | oracle         | implementation |
