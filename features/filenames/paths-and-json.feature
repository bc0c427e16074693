@filenames @format:filename @spec:filename.path
Feature: Plain file names, protocol prefixes and json: options
  A file name is a host path, unless the text before its first ':' (with no '/' before it)
  names a protocol. `file:` names the file protocol itself and is stripped. `json:{...}` gives
  the block options as a JSON object in QEMU's dialect (single quotes allowed, a duplicate key
  refused), with nested objects or dotted keys for the children. qemu-img's image: line shows a
  plain name when opening that name would build the same nodes, and json:{...} of the options
  that matter otherwise.

  @protocol:file
  Scenario Outline: <what> opens the file protocol and is shown as the path
    Given a 1 MiB raw image
    When the image is opened by the name '<name>'
    Then the image line shows '{image}'
    And the opened image has format raw and a virtual size of 1 MiB

    Examples:
      | what                  | name         |
      | a plain path          | {image}      |
      | the file: prefix      | file:{image} |

  @protocol:file
  Scenario Outline: <what> resolves to the file protocol's filename
    Given a 1 MiB raw image
    When the filename '<name>' is resolved
    Then the options are "driver=file,filename={image}"

    Examples:
      | what                  | name         |
      | a plain path          | {image}      |
      | the file: prefix      | file:{image} |

  @protocol:file @spec:filename.json
  Scenario Outline: json: with <how> opens the image named inside
    Given a 1 MiB qcow2 image
    When the image is opened by the name '<name>'
    Then the image line shows '{image}'
    And the opened image has format qcow2 and a virtual size of 1 MiB

    Examples:
      | how                         | name                                                                      |
      | a nested file object        | json:{"driver":"qcow2","file":{"driver":"file","filename":"{image}"}}     |
      | dotted keys                 | json:{"driver":"qcow2","file.driver":"file","file.filename":"{image}"}    |
      | no format (probed)          | json:{"file":{"filename":"{image}"}}                                      |
      | spaces around the object    | json: {"file.filename": "{image}"}                                        |
      | an option that changes no byte | json:{"driver":"qcow2","file":{"driver":"file","filename":"{image}","locking":"off"}} |

  @protocol:file @spec:filename.json
  Scenario: json: in single quotes, as QEMU's JSON dialect allows, opens the image named inside
    Given a 1 MiB qcow2 image
    When the image is opened by the name "json:{'driver':'qcow2','file':{'filename':'{image}'}}"
    Then the image line shows '{image}'
    And the opened image has format qcow2 and a virtual size of 1 MiB

  @protocol:file @spec:filename.json
  Scenario: json: with a nested file object resolves to the same options
    Given a 1 MiB qcow2 image
    When the filename 'json:{"driver":"qcow2","file":{"driver":"file","filename":"{image}"}}' is resolved
    Then the options are "driver=qcow2,file.filename={image}"

  @protocol:file @spec:filename.json
  Scenario: qemu-img -f wins over the driver inside json:
    Given a 1 MiB qcow2 image
    When the image is opened as raw by the name 'json:{"driver":"qcow2","file":{"driver":"file","filename":"{image}"}}'
    Then the opened image has format raw

  @protocol:file @spec:filename.json @spec:filename.display
  Scenario Outline: options that change the node are shown as json: (<what>)
    Given a 1 MiB raw image
    When the image is opened by the name '<name>'
    Then the image line shows '<shown>'
    And the opened image has format <format> and a virtual size of <size>

    Examples:
      | what                 | name                                                                                       | shown                                                                                                   | format | size      |
      | raw offset and size  | json:{"driver":"raw","offset":512,"size":512,"file":{"driver":"file","filename":"{image}"}} | json:{"offset": 512, "driver": "raw", "size": 512, "file": {"driver": "file", "filename": "{image}"}} | raw    | 512 bytes |
      | the file as the image | json:{"driver":"file","filename":"{image}"}                                              | {image}                                                                                                 | file   | 1 MiB     |

  @protocol:null-co @spec:filename.null-co
  Scenario Outline: the null device named <name> is shown as <shown>
    When the image is opened by the name '<name>'
    Then the image line shows '<shown>'
    And the opened image has format <format> and a virtual size of <size>

    Examples:
      | name                                                     | shown                                                     | format  | size  |
      | null-co://                                               | null-co://                                                | raw     | 1 GiB |
      | json:{"driver":"null-co","latency-ns":5}                 | null-co://                                                | null-co | 1 GiB |
      | json:{"driver":"null-co","size":4096}                    | json:{"driver": "null-co", "size": 4096}                  | null-co | 4 KiB |
      | json:{"driver":"raw","file":{"driver":"null-co","size":1024}} | json:{"driver": "raw", "file": {"driver": "null-co", "size": 1024}} | raw | 1 KiB |

  @protocol:null-co @spec:filename.null-co
  Scenario: null-co accepts no other filename
    When the filename 'null-co://x' is resolved
    Then the filename is refused with "The only allowed filename for this driver is 'null-co://'"

  @spec:filename.json
  Scenario Outline: malformed json: is refused: <what>
    When the filename '<name>' is resolved
    Then the filename is refused with "<says>"

    Examples:
      | what                    | name                   | says                                           |
      | nothing after json:     | json:                  | Could not parse the JSON options: Expecting a JSON value |
      | an unclosed object      | json:{                 | JSON parse error, premature EOI                |
      | not an object           | json:[]                | Invalid JSON object given                      |
      | a duplicate key         | json:{"a":1,"a":2}     | JSON parse error, duplicate key                |
      | two values              | json:{"a":1}}          | Expecting at most one JSON value               |
      | a bad keyword           | json:{"a":tru}         | JSON parse error, invalid keyword 'tru'        |
      | a bad escape            | json:{"a":"\\q"}       | JSON parse error, invalid escape sequence in string |
      | a bad \\u escape        | json:{"a":"\\u12"}     | is not a valid Unicode character               |
      | a leading zero          | json:{"a":01}          | JSON parse error, stray '01'                   |
      | a number cut short      | json:{"a":1.}          | JSON parse error, stray '1.}'                  |
      | a number as key         | json:{1:1}             | JSON parse error, key is not a string in object |
      | a missing comma         | json:{"a":1 "b":2}     | JSON parse error, expected separator in dict   |

  @protocol:file @spec:filename.json
  Scenario Outline: json: options a driver does not take are refused: <what>
    Given a 1 MiB raw image
    When the filename '<name>' is resolved
    Then the filename is refused with "<says>"

    Examples:
      | what                      | name                                                                                 | says                                                  |
      | an unknown driver         | json:{"driver":"nosuch"}                                                             | Unknown driver 'nosuch'                               |
      | an unknown option         | json:{"driver":"raw","x":1,"file.filename":"{image}"}                                | Block format 'raw' does not support the option 'x'    |
      | a filename but no driver  | json:{"filename":"{image}"}                                                          | Must specify either driver or file                    |
      | a file without its name   | json:{"driver":"raw","file":{"driver":"file"}}                                       | The 'file' block driver requires a file name          |
      | a node reference          | json:{"driver":"raw","file":"node0"}                                                 | Cannot find device='node0' nor node-name='node0'      |
      | a bad enum value          | json:{"driver":"raw","file":{"driver":"file","filename":"{image}","locking":"maybe"}} | invalid parameter value: maybe                        |
      | a size that is no number  | json:{"driver":"raw","offset":"abc","file.filename":"{image}"}                       | Parameter 'offset' expects a non-negative number below 2^64 |

  @protocol:file @spec:filename.json
  Scenario Outline: a raw window that does not fit the file cannot be opened: <what>
    Given a 1 MiB raw image
    When the image is opened by the name '<name>'
    Then opening is refused with "<says>"

    Examples:
      | what                      | name                                                                       | says                                                                          |
      | an unaligned size         | json:{"driver":"raw","size":1000,"file.filename":"{image}"}                | Specified size is not multiple of 512                                         |
      | an offset past the end    | json:{"driver":"raw","offset":2097152,"file.filename":"{image}"}           | Offset (2097152) cannot be greater than size of the containing file (1048576) |
      | a window past the end     | json:{"driver":"raw","offset":512,"size":1048576,"file.filename":"{image}"} | The sum of offset (512) and size (1048576) has to be smaller or equal to the  actual size of the containing file (1048576) |

  Scenario Outline: a protocol name nobody has is refused: <name>
    When the filename '<name>' is resolved
    Then the filename is refused with "Unknown protocol '<protocol>'"

    Examples:
      | name         | protocol |
      | foo:bar      | foo      |
      | NBD://h/x    | NBD      |
      | gluster+foo://h/v/p | gluster+foo |
