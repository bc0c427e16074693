@filenames @format:nbd @protocol:nbd @spec:nbd
Feature: NBD filenames
  The manual's NBD forms: nbd://HOST[:PORT]/EXPORT (nbd+tcp:// the same), nbd+unix:///EXPORT
  with ?socket=PATH, and the older nbd:HOST:PORT and nbd:unix:PATH with :exportname=NAME. The
  port is 10809 when absent. Where no server is needed to see it, qemu-img shows what it made of
  the name by the address it fails to reach; with a server, by the name on its image: line: the
  URI form with the port filled in.

  @spec:nbd.uri @spec:nbd.unix @spec:nbd.legacy-syntax @spec:nbd.export-name
  Scenario Outline: <name> names <options>
    When the filename '<name>' is resolved
    Then the options are "<options>"

    Examples: URIs
      | name                                 | options                                                                        |
      | nbd://127.0.0.1:1/disk               | server.type=inet,server.host=127.0.0.1,server.port=1,export=disk               |
      | nbd+tcp://127.0.0.1:1                | server.type=inet,server.host=127.0.0.1,server.port=1,!export                   |
      | nbd://nosuch.invalid/disk            | server.type=inet,server.host=nosuch.invalid,server.port=10809,export=disk      |
      | nbd://[::1]:1/disk                   | server.type=inet,server.host=::1,server.port=1                                 |
      | nbd://127.0.0.1:1/a%20b#ignored      | server.host=127.0.0.1,server.port=1,export=a b                                 |
      | nbd+unix:///disk?socket={missing}    | server.type=unix,server.path={missing},export=disk                             |
      | nbd+unix://?socket={missing}         | server.type=unix,server.path={missing},!export                                 |

    Examples: the older syntax
      | name                                 | options                                                                        |
      | nbd:127.0.0.1:1                      | server.type=inet,server.host=127.0.0.1,server.port=1,!export                   |
      | nbd:127.0.0.1:1:exportname=disk      | server.type=inet,server.host=127.0.0.1,server.port=1,export=disk               |
      | nbd:unix:{missing}                   | server.type=unix,server.path={missing},!export                                 |
      | nbd:unix:{missing}:exportname=disk   | server.type=unix,server.path={missing},export=disk                             |

  @spec:nbd.legacy-syntax
  Scenario Outline: NBD options in the older spelling name the server: <options>
    When the filename '<json>' is resolved
    Then the options are "<options>"

    Examples:
      | json                                                   | options                                                 |
      | json:{"driver":"nbd","host":"127.0.0.1","port":"1"}    | server.type=inet,server.host=127.0.0.1,server.port=1    |
      | json:{"driver":"nbd","path":"{missing}"}               | server.type=unix,server.path={missing}                  |

  @spec:nbd.qemu-nbd
  Scenario Outline: opened through <name>, the image is shown as <shown>
    Given a 1 MiB raw image
    And the image is exported over NBD on a <transport> as "disk"
    When the image is opened by the name '<name>'
    Then the image line shows '<shown>'
    And the opened image has format raw and a virtual size of 1 MiB

    Examples:
      | transport    | name                                | shown                             |
      | unix socket  | nbd:unix:{socket}:exportname=disk   | nbd+unix:///disk?socket={socket}  |
      | unix socket  | nbd+unix:///disk?socket={socket}    | nbd+unix:///disk?socket={socket}  |
      | loopback port | nbd:127.0.0.1:{port}:exportname=disk | nbd://127.0.0.1:{port}/disk     |
      | loopback port | nbd+tcp://127.0.0.1:{port}/disk    | nbd://127.0.0.1:{port}/disk       |

  @spec:nbd.qemu-nbd
  Scenario: the default export over a socket is shown without an export name
    Given a 1 MiB raw image
    And the image is exported over NBD on a unix socket as the default export
    When the image is opened by the name 'nbd:unix:{socket}'
    Then the image line shows 'nbd+unix://?socket={socket}'

  @refusal
  Scenario Outline: a malformed NBD name is refused: <what>
    When the filename '<name>' is resolved
    Then the filename is refused with "<says>"

    Examples: URIs
      | what                          | name                                   | says                                      |
      | a port above 65535            | nbd://127.0.0.1:65536/x                | No valid URL specified                    |
      | an empty port                 | nbd://127.0.0.1:/x                     | No valid URL specified                    |
      | no host                       | nbd:///x                               | No valid URL specified                    |
      | a space in the export         | nbd://127.0.0.1:1/a b                  | No valid URL specified                    |
      | a query on a TCP URI          | nbd://127.0.0.1:1/x?socket=/s          | No valid URL specified                    |
      | a unix URI without socket     | nbd+unix:///x                          | No valid URL specified                    |
      | a unix URI with a host        | nbd+unix://h/x?socket={missing}        | No valid URL specified                    |
      | a socket without a value      | nbd+unix:///x?socket                   | No valid URL specified                    |
      | an unknown transport          | nbd+foo://127.0.0.1/x                  | Unknown protocol 'nbd+foo'                |

    Examples: the older syntax
      | what                          | name                                   | says                                      |
      | no port                       | nbd:127.0.0.1                          | error parsing address '127.0.0.1'         |
      | nothing after nbd:            | nbd:                                   | NBD server address missing                |
      | an empty export name          | nbd:127.0.0.1:1:exportname=            | NBD server address missing                |
      | not nbd: at all               | nbd+unix:/x?socket=/s                  | File name string for NBD must start with 'nbd:' |
      | a server and legacy options   | json:{"driver":"nbd","server":{"type":"inet","host":"h","port":"1"},"host":"h"} | Cannot use 'server' and path/host/port at the same time |
