@filenames @format:filename @spec:filename.image-opts
Feature: Dotted option lists (--image-opts)
  With --image-opts the file name is an option list in the -blockdev style:
  `driver=qcow2,file.driver=file,file.filename=PATH`. Dotted keys reach the children, ",,"
  is a comma inside a value, every value is text. qemu-img shows the file's name when the
  options say nothing more than it, and json:{...} with the values as text otherwise.

  @protocol:file
  Scenario Outline: the options <options> open the image and show its path
    Given a 1 MiB <format> image
    When the image is opened by the options '<options>'
    Then the image line shows '{image}'
    And the opened image has format <format> and a virtual size of 1 MiB

    Examples:
      | format | options                                                |
      | qcow2  | driver=qcow2,file.driver=file,file.filename={image}    |
      | qcow2  | file.filename={image}                                  |
      | raw    | driver=raw,file.filename={image},file.locking=off      |
      | raw    | driver=raw,file.filename={image},read-only=on          |

  @protocol:file
  Scenario: a comma in a file name is written as two
    Given a 1 MiB raw image "a,b"
    When the image is opened by the options 'driver=raw,file.filename={dir}/a,,b.raw'
    Then the image line shows '{dir}/a,b.raw'

  @protocol:file
  Scenario: the option list resolves to nested options
    Given a 1 MiB qcow2 image
    When the option list 'driver=qcow2,file.driver=file,file.filename={image}' is resolved
    Then the options are "driver=qcow2,file.driver=file,file.filename={image}"

  @protocol:file @spec:filename.display
  Scenario: options that change the node are shown as json: with text values
    Given a 1 MiB raw image
    When the image is opened by the options 'driver=raw,offset=512,size=1024,file.driver=file,file.filename={image}'
    Then the image line shows 'json:{"offset": "512", "driver": "raw", "size": "1024", "file": {"driver": "file", "filename": "{image}"}}'
    And the opened image has format raw and a virtual size of 1 KiB

  @protocol:null-co @spec:filename.null-co
  Scenario: a null device of 4 KiB is shown with its size as text
    When the image is opened by the options 'driver=null-co,size=4096'
    Then the image line shows 'json:{"driver": "null-co", "size": "4096"}'
    And the opened image has format null-co and a virtual size of 4 KiB

  @protocol:file
  Scenario Outline: a malformed option list is refused: <what>
    Given a 1 MiB raw image
    When the option list '<options>' is resolved
    Then the filename is refused with "<says>"

    Examples:
      | what                           | options                                      | says                                              |
      | nothing at all                 |                                              | Must specify either driver or file                |
      | no file for the format         | driver=raw                                   | A block device must be specified for \"file\"     |
      | a bare path (a node name)      | {image}                                      | Cannot find device='{image}' nor node-name='{image}' |
      | an escaped comma in the driver | driver=raw,,file.filename={image}            | Unknown driver 'raw,file.filename={image}'        |
      | an unknown option              | driver=raw,file.filename={image},bogus=1     | Block format 'raw' does not support the option 'bogus' |
      | an empty option name           | driver=raw,=x,file.filename={image}          | Block format 'raw' does not support the option '' |
      | a node and options for file    | driver=raw,file.filename={image},file=x      | Cannot reference an existing block device with additional options or a new filename |
      | an unknown protocol option     | driver=raw,file.filename={image},file.x=1    | Block protocol 'file' doesn't support the option 'x' |
      | a bad enum value               | driver=raw,file.filename={image},file.aio=fast | invalid parameter value: fast                   |
      | a bad boolean                  | driver=raw,file.filename={image},read-only=maybe | Parameter 'read-only' expects 'on' or 'off'     |

  @protocol:null-co
  Scenario Outline: a null device option with a bad value is refused: <options>
    When the option list '<options>' is resolved
    Then the filename is refused with "<says>"

    Examples:
      | options                       | says                                                      |
      | driver=null-co,size=1x        | Parameter 'size' expects a non-negative number below 2^64 |
      | driver=null-co,read-zeroes=maybe | Parameter 'read-zeroes' expects 'on' or 'off'          |
