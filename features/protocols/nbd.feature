@protocol:nbd @spec:nbd
Feature: NBD: an image exported by one implementation, used by the other
  The manual's NBD section: qemu-nbd exports an image on a Unix socket or a TCP port, and
  QEMU reaches it by an nbd:// or nbd+unix:// URI, or by the older nbd:HOST:PORT and
  nbd:unix:PATH syntax with :exportname=. Every scenario runs both ways: the implementation
  under test exports and the oracle is the client, then the oracle exports and the
  implementation under test is the client. What one writes through the export, the other
  reads from the image itself once the server is gone.

  @spec:nbd.qemu-nbd @spec:nbd.export-name
  Scenario Outline: a <format> image exported by the <server> is read and written by the <client> through <form>
    Given a 4 MiB <format> image
    And 64 KiB of pattern 0x5a written at offset 1 MiB
    When the <server> exports the image over NBD on "<transport>" as "disk"
    Then the <client> reports a virtual size of 4 MiB through "<form>" as raw
    And the <client> reads 64 KiB of pattern 0x5a at offset 1 MiB through "<form>" as raw
    When the <client> writes 128 KiB of pattern 0x11 at offset 3 MiB through "<form>" as raw
    And the NBD export is stopped
    Then the 128 KiB at offset 3 MiB reads back as pattern 0x11
    And the 64 KiB at offset 1 MiB reads back as pattern 0x5a

    @spec:nbd.unix
    Examples: Unix sockets, URI form
      | format | server         | client         | transport     | form                                |
      | raw    | implementation | oracle         | a unix socket | nbd+unix:///{export}?socket={socket} |
      | qcow2  | oracle         | implementation | a unix socket | nbd+unix:///{export}?socket={socket} |
      | qcow2  | implementation | oracle         | a unix socket | nbd+unix:///{export}?socket={socket} |
      | raw    | oracle         | implementation | a unix socket | nbd+unix:///{export}?socket={socket} |

    @spec:nbd.uri
    Examples: TCP on loopback, URI form
      | format | server         | client         | transport       | form                             |
      | raw    | implementation | oracle         | a loopback port | nbd://127.0.0.1:{port}/{export}     |
      | qcow2  | oracle         | implementation | a loopback port | nbd://127.0.0.1:{port}/{export}     |
      | raw    | oracle         | implementation | a loopback port | nbd+tcp://127.0.0.1:{port}/{export} |

    @spec:nbd.legacy-syntax
    Examples: the older syntax
      | format | server         | client         | transport       | form                                   |
      | raw    | implementation | oracle         | a unix socket   | nbd:unix:{socket}:exportname={export}  |
      | raw    | oracle         | implementation | a unix socket   | nbd:unix:{socket}:exportname={export}  |
      | qcow2  | implementation | oracle         | a loopback port | nbd:127.0.0.1:{port}:exportname={export} |
      | qcow2  | oracle         | implementation | a loopback port | nbd:127.0.0.1:{port}:exportname={export} |

  @spec:nbd.qemu-nbd
  Scenario Outline: a qcow2 image carried over NBD as its file, opened as qcow2 by the <client>
    Given a 4 MiB qcow2 image
    And 64 KiB of pattern 0xa7 written at offset 2 MiB
    When the <server> exports the image's file over NBD on "a unix socket" as "file"
    Then the <client> reads 64 KiB of pattern 0xa7 at offset 2 MiB through "nbd+unix:///{export}?socket={socket}" as qcow2
    # the export has the file's fixed size, so the write goes to a cluster the file already holds
    When the <client> writes 4 KiB of pattern 0x3c at offset 2 MiB through "nbd+unix:///{export}?socket={socket}" as qcow2
    And the NBD export is stopped
    Then the 4 KiB at offset 2 MiB reads back as pattern 0x3c
    And the 60 KiB at offset 2052 KiB reads back as pattern 0xa7
    And the image is checked
    And the check reports no corruption

    Examples:
      | server         | client         |
      | implementation | oracle         |
      | oracle         | implementation |

  @spec:nbd.export-name
  Scenario Outline: an export name the <server>'s server does not have is a clear error for the <client>
    Given a 1 MiB raw image
    When the <server> exports the image over NBD on "a unix socket" as "disk"
    And the <client> tries to open export "nosuch" through "nbd+unix:///{export}?socket={socket}" as raw
    Then the NBD access fails with a message containing "Requested export not available"

    Examples:
      | server         | client         |
      | implementation | oracle         |
      | oracle         | implementation |

  @spec:nbd.qemu-nbd
  Scenario Outline: a read-only export refuses the <client>'s writes
    Given a 1 MiB raw image
    And 4 KiB of pattern 0x42 written at offset 0
    When the <server> exports the image over NBD read-only on "a unix socket" as "ro"
    And the <client> tries to write 4 KiB of pattern 0x24 at offset 0 through "nbd+unix:///{export}?socket={socket}" as raw
    Then the NBD access fails
    When the NBD export is stopped
    Then the 4 KiB at offset 0 reads back as pattern 0x42

    Examples:
      | server         | client         |
      | implementation | oracle         |
      | oracle         | implementation |

  @spec:nbd.share
  Scenario Outline: an export the <server> serves for 2 clients at once is used by 2 of the <client>'s clients together
    Given a 4 MiB raw image
    And 64 KiB of pattern 0x5a written at offset 1 MiB
    When the <server> exports the image over NBD on "a unix socket" as "disk" for 2 clients at once
    And the <client> holds the export open through "nbd+unix:///{export}?socket={socket}" as raw
    Then the <client> reads 64 KiB of pattern 0x5a at offset 1 MiB through "nbd+unix:///{export}?socket={socket}" as raw

    Examples:
      | server         | client         |
      | implementation | oracle         |
      | oracle         | implementation |

  @spec:nbd.share
  Scenario Outline: an export the <server> serves for 1 client keeps a second client of the <client> out while the first stays
    Given a 4 MiB raw image
    When the <server> exports the image over NBD on "a unix socket" as "disk" for 1 client at once
    And the <client> holds the export open through "nbd+unix:///{export}?socket={socket}" as raw
    Then another <client> is not served through "nbd+unix:///{export}?socket={socket}" as raw within 3 seconds

    Examples:
      | server         | client         |
      | implementation | oracle         |
      | oracle         | implementation |
