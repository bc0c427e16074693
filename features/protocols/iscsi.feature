@protocol:iscsi @spec:iscsi
Feature: iSCSI: a LUN of a tgtd target, used by both initiators
  The manual's iSCSI section: QEMU's built-in initiator reaches a LUN by
  iscsi://[<username>[%<password>]@]<host>[:<port>]/<target-iqn-name>/<lun>, with CHAP
  credentials in the URL or in LIBISCSI_CHAP_USERNAME / LIBISCSI_CHAP_PASSWORD, and the
  manual's loopback example serves a disk and a CD-ROM LUN with the Linux SCSI target (tgtd).
  Here the scenario's image file is a LUN of a private tgtd on 127.0.0.1; what one initiator
  writes through the LUN, the other reads through it, and the file holds it. Scenarios with a
  single initiator name the implementation only: the run with --impl qemu puts libiscsi in
  that role, so each initiator meets each case once.

  @spec:iscsi.url @spec:iscsi.loopback
  Scenario Outline: a <format> image on a disk LUN: the <writer> writes it, the <reader> reads it
    Given a 4 MiB <format> image
    And 64 KiB of pattern 0x5a written at offset 1 MiB
    When the image is served by tgtd as a disk LUN
    Then the <reader> reads 64 KiB of pattern 0x5a at offset 1 MiB from iSCSI "iscsi://{portal}/{iqn}/{lun}" as <format>
    # the LUN keeps the file's size, so a qcow2 write goes to the cluster the file already holds
    When the <writer> writes 20 KiB of pattern 0x11 at offset 1028 KiB to iSCSI "iscsi://{portal}/{iqn}/{lun}" as <format>
    Then the <reader> reads 20 KiB of pattern 0x11 at offset 1028 KiB from iSCSI "iscsi://{portal}/{iqn}/{lun}" as <format>
    And the 20 KiB at offset 1028 KiB reads back as pattern 0x11

    Examples:
      | format | writer         | reader         |
      | raw    | implementation | oracle         |
      | qcow2  | implementation | oracle         |
      | qcow2  | oracle         | implementation |

  @spec:iscsi.header-digest @spec:iscsi.initiator-name
  Scenario: the implementation logs in with a header digest and an initiator name of its own
    Given a 1 MiB raw image
    And 4 KiB of pattern 0x42 written at offset 512 KiB
    When the image is served by tgtd as a disk LUN
    Then the implementation reads 4 KiB of pattern 0x42 at offset 512 KiB from iSCSI 'json:{"driver": "raw", "file": {"driver": "iscsi", "transport": "tcp", "portal": "{portal}", "target": "{iqn}", "lun": 1, "header-digest": "crc32c-none", "initiator-name": "iqn.qemu.test:my-initiator"}}' as raw

  @spec:iscsi.url
  Scenario Outline: CHAP credentials in the URL: the <who> logs in with the right ones
    Given a 1 MiB raw image
    And 4 KiB of pattern 0x42 written at offset 0
    When the image is served by tgtd as a disk LUN with CHAP user "qbcuser" and password "qbc-secret-1234"
    Then the <who> reads 4 KiB of pattern 0x42 at offset 0 from iSCSI "iscsi://qbcuser%qbc-secret-1234@{portal}/{iqn}/{lun}" as raw
    When the <who> writes 4 KiB of pattern 0x24 at offset 4 KiB to iSCSI "iscsi://qbcuser%qbc-secret-1234@{portal}/{iqn}/{lun}" as raw
    Then the 4 KiB at offset 4 KiB reads back as pattern 0x24

    Examples:
      | who            |
      | implementation |

  @spec:iscsi.chap-env
  Scenario Outline: CHAP credentials from the environment: the <who> logs in with them
    Given a 1 MiB raw image
    And 4 KiB of pattern 0x42 written at offset 0
    When the image is served by tgtd as a disk LUN with CHAP user "qbcuser" and password "qbc-secret-1234"
    And the environment has LIBISCSI_CHAP_USERNAME "qbcuser" and LIBISCSI_CHAP_PASSWORD "qbc-secret-1234"
    Then the <who> reads 4 KiB of pattern 0x42 at offset 0 from iSCSI "iscsi://{portal}/{iqn}/{lun}" as raw

    Examples:
      | who            |
      | implementation |

  # The manual keeps the password out of the process list with the environment; 7.2's QAPI
  # schema has the other way, password-secret: the id of a --object secret holding it.
  @spec:iscsi.chap-env
  Scenario Outline: a CHAP password from a secret object (password-secret): the <who> logs in with it
    Given a 1 MiB raw image
    And 4 KiB of pattern 0x42 written at offset 0
    And a secret "chap0" read from a file holding the passphrase "qbc-secret-1234"
    When the image is served by tgtd as a disk LUN with CHAP user "qbcuser" and password "qbc-secret-1234"
    Then the <who> reads 4 KiB of pattern 0x42 at offset 0 from iSCSI 'json:{"driver": "raw", "file": {"driver": "iscsi", "transport": "tcp", "portal": "{portal}", "target": "{iqn}", "lun": {lun}, "user": "qbcuser", "password-secret": "chap0"}}' as raw
    When the <who> writes 4 KiB of pattern 0x24 at offset 4 KiB to iSCSI 'json:{"driver": "raw", "file": {"driver": "iscsi", "transport": "tcp", "portal": "{portal}", "target": "{iqn}", "lun": {lun}, "user": "qbcuser", "password-secret": "chap0"}}' as raw
    Then the 4 KiB at offset 4 KiB reads back as pattern 0x24

    Examples:
      | who            |
      | implementation |

  @spec:iscsi.chap-env @refusal
  Scenario Outline: password-secret is refused: <what>
    Given a 1 MiB raw image
    And a secret "chap0" read from a file holding the passphrase "<secret>"
    When the image is served by tgtd as a disk LUN with CHAP user "qbcuser" and password "qbc-secret-1234"
    And the implementation tries to open iSCSI 'json:{"driver": "raw", "file": {"driver": "iscsi", "transport": "tcp", "portal": "{portal}", "target": "{iqn}", "lun": {lun}<more>}}' as raw
    Then the iSCSI access fails with a message containing "<says>"

    Examples:
      | what                               | secret          | more                                                          | says                                                           |
      | a wrong password in the secret     | wrong-password  | , "user": "qbcuser", "password-secret": "chap0"               | Authentication failure                                         |
      | a secret id no object has          | qbc-secret-1234 | , "user": "qbcuser", "password-secret": "nosuch"              | No secret with id 'nosuch'                                     |
      | both password and password-secret  | qbc-secret-1234 | , "user": "qbcuser", "password": "x", "password-secret": "chap0" | 'password' and 'password-secret' properties are mutually exclusive |
      | a user with no password at all     | qbc-secret-1234 | , "user": "qbcuser"                                           | CHAP username specified but no password was given              |
      | a password-secret without a user   | qbc-secret-1234 | , "password-secret": "chap0"                                  | Authentication failure                                         |

  @spec:iscsi.url @refusal
  Scenario Outline: the <who> is refused: <what>
    Given a 1 MiB raw image
    When the image is served by tgtd as a disk LUN with CHAP user "qbcuser" and password "qbc-secret-1234"
    And the <who> tries to open iSCSI "<name>" as raw
    Then the iSCSI access fails with a message containing "<says>"

    Examples:
      | who            | what                  | name                                           | says                       |
      | implementation | a wrong CHAP password | iscsi://qbcuser%wrong@{portal}/{iqn}/{lun}     | Authentication failure     |
      | implementation | no CHAP credentials   | iscsi://{portal}/{iqn}/{lun}                   | Authentication failure     |
      | implementation | an unknown target     | iscsi://qbcuser%qbc-secret-1234@{portal}/{iqn}-nosuch/1 | Target not found  |
      | implementation | an unknown LUN        | iscsi://qbcuser%qbc-secret-1234@{portal}/{iqn}/9 | LOGICAL_UNIT_NOT_SUPPORTED |

  @spec:iscsi.loopback
  Scenario Outline: a CD-ROM LUN is read by the <who> and refuses its writes
    Given a 1 MiB raw image
    And 64 KiB of pattern 0xcd written at offset 256 KiB
    When the image is served by tgtd as a cdrom LUN
    Then the <who> reads 64 KiB of pattern 0xcd at offset 256 KiB from iSCSI "iscsi://{portal}/{iqn}/{lun}" as raw
    When the <who> tries to write 4 KiB of pattern 0x01 at offset 256 KiB to iSCSI "iscsi://{portal}/{iqn}/{lun}" as raw
    Then the iSCSI access fails
    And the 64 KiB at offset 256 KiB reads back as pattern 0xcd

    Examples:
      | who            |
      | implementation |

  @spec:iscsi.url
  Scenario Outline: qemu-img info and map of a LUN through the <who>: image json:{...}, disk size unavailable
    Given a 4 MiB raw image
    When the image is served by tgtd as a disk LUN
    Then the <who> shows iSCSI "iscsi://{portal}/{iqn}/{lun}" as raw with a virtual size of 4 MiB and the image name:
      """
      json:{"driver": "raw", "file": {"lun": "{lun}", "portal": "{portal}", "driver": "iscsi", "transport": "tcp", "target": "{iqn}"}}
      """
    And the <who> maps iSCSI "iscsi://{portal}/{iqn}/{lun}" as raw as:
      | start | length  | data | zero  |
      | 0     | 4194304 | true | false |

    Examples:
      | who            |
      | implementation |

  @spec:iscsi.url
  Scenario Outline: a thin LUN: the <writer> discards with UNMAP, the <reader> maps the hole
    Given a 4 MiB raw image
    And 4 MiB of pattern 0x77 written at offset 0
    When the image is served by tgtd as a thin LUN
    And the <writer> discards 1 MiB at offset 1 MiB of iSCSI "iscsi://{portal}/{iqn}/{lun}" as raw
    Then the <reader> maps iSCSI "iscsi://{portal}/{iqn}/{lun}" as raw as:
      | start   | length  | data  | zero  |
      | 0       | 1048576 | true  | false |
      | 1048576 | 1048576 | false | true  |
      | 2097152 | 2097152 | true  | false |
    And the 1 MiB at offset 1 MiB reads back as zeroes

    Examples:
      | writer         | reader         |
      | implementation | oracle         |
      | oracle         | implementation |
