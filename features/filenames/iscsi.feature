@filenames @format:iscsi @protocol:iscsi @spec:iscsi
Feature: iSCSI URLs
  iscsi://[USER[%PASSWORD]@]HOST[:PORT]/TARGET-IQN/LUN names a LUN for QEMU's own initiator
  (libiscsi); iser:// the same over iSER. The portal keeps HOST[:PORT] as written (port 3260
  when connecting without one), the target is percent-decoded, and the CHAP user and password
  come from the URL or from LIBISCSI_CHAP_USERNAME and LIBISCSI_CHAP_PASSWORD. qemu-img shows
  no option of an iSCSI name without a target to log in to, so these scenarios are about the
  parse; the malformed ones are cross-checked against qemu-img's refusals.

  @spec:iscsi.url
  Scenario Outline: <name> names LUN <lun> of <target>
    When the filename '<name>' is resolved
    Then the options are "driver=iscsi,transport=<transport>,portal=<portal>,target=<target>,lun=<lun><more>"

    Examples:
      | name                                              | transport | portal            | target                     | lun | more                      |
      | iscsi://127.0.0.1/iqn.2008-11.org.test:disk/1     | tcp       | 127.0.0.1         | iqn.2008-11.org.test:disk  | 1   | ,!user,!password          |
      | iscsi://me%secret@storage.example/iqn.x%3ay/2     | tcp       | storage.example   | iqn.x:y                    | 2   | ,user=me,password=secret  |
      | iscsi://me:secret@[::1]:3260/iqn.x/3              | tcp       | [::1]:3260        | iqn.x                      | 3   | ,user=me,password=secret  |
      | iscsi://me@127.0.0.1/iqn.x/4                      | tcp       | 127.0.0.1         | iqn.x                      | 4   | ,!user,!password          |
      | iser://127.0.0.1/iqn.x/5                          | iser      | 127.0.0.1         | iqn.x                      | 5   |                           |

  @spec:iscsi.chap-env
  Scenario: CHAP credentials come from the environment when the URL has none
    When the filename 'iscsi://127.0.0.1/iqn.x/1' is resolved with the environment "LIBISCSI_CHAP_USERNAME=envuser,LIBISCSI_CHAP_PASSWORD=envpass"
    Then the options are "user=envuser,password=envpass"

  @spec:iscsi.chap-env
  Scenario: the URL's user takes precedence over the environment's
    When the filename 'iscsi://urluser%urlpass@127.0.0.1/iqn.x/1' is resolved with the environment "LIBISCSI_CHAP_USERNAME=envuser,LIBISCSI_CHAP_PASSWORD=envpass"
    Then the options are "user=urluser,password=urlpass"

  @spec:iscsi.initiator-name @spec:iscsi.header-digest
  Scenario: the initiator name and header digest are options of the node
    When the option list 'driver=raw,file.driver=iscsi,file.transport=tcp,file.portal=127.0.0.1,file.target=iqn.x,file.lun=1,file.initiator-name=iqn.qemu.test:me,file.header-digest=crc32c' is resolved
    Then the options are "file.initiator-name=iqn.qemu.test:me,file.header-digest=crc32c,file.lun=1"

  @spec:iscsi.url @refusal
  Scenario Outline: a malformed iSCSI URL is refused: <what>
    When the filename '<name>' is resolved
    Then the filename is refused with "<says>"

    Examples: refused by libiscsi's grammar
      | what                          | name                                   | says                                          |
      | no target                     | iscsi://127.0.0.1                      | Failed to parse URL : iscsi://127.0.0.1       |
      | no LUN                        | iscsi://127.0.0.1/iqn.x                | Failed to parse URL : iscsi://127.0.0.1/iqn.x |
      | a LUN that is no number       | iscsi://127.0.0.1/iqn.x/abc            | Failed to parse URL : iscsi://127.0.0.1/iqn.x/abc |
      | an unknown header digest      | iscsi://127.0.0.1/iqn.x/1?header_digest=md5 | Failed to parse URL                      |

    Examples: accepted by libiscsi, refused by the reference before any connection
      | what                          | name                                   | says                                          |
      | a port above 65535            | iscsi://127.0.0.1:99999/iqn.x/1        | Failed to parse URL                           |
      | no host                       | iscsi:///iqn.x/1                       | Failed to parse URL                           |
      | an empty target               | iscsi://127.0.0.1//1                   | Failed to parse URL                           |
      | a negative LUN                | iscsi://127.0.0.1/iqn.x/-1             | Failed to parse URL                           |
      | a header digest in the URL    | iscsi://127.0.0.1/iqn.x/1?header_digest=crc32c | Failed to parse URL                   |
