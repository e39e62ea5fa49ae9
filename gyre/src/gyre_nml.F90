!> @file gyre_nml.F90
!> @brief NEMO-style namelists: every block is read from namelist_ref, then overridden by namelist_cfg.
!>
!> An unknown block or variable, a bad value or an invalid switch value is reported naming the file, the block
!> and the variable. Reading happens before MPI is up, so errors are returned as a message and raised by the
!> caller with ctl_stop once the communicator exists. &namobridge is read and checked by the bridge's host
!> layer (obr_host_nml), in the same order: namelist_ref, then namelist_cfg.
module gyre_nml
   use gyre_par
   use obr_host_nml, only: obr_nml_defaults, obr_nml_read, obr_nml_check, obr_nml_write, obr_lower, &
                           obr_nml_has_group
   implicit none
   private

   public :: nml_read, nml_print, nml_field_index

   character(len=*), parameter :: cp_ref = 'namelist_ref'   ! reference namelist
   character(len=*), parameter :: cp_cfg = 'namelist_cfg'   ! configuration namelist
   character(len=1024) :: cerr = ''                         ! the error found by obr_nml_check
   integer, parameter :: jpblk = 6
   character(len=12), parameter :: cp_blocks(jpblk) = [character(len=12) :: 'namrun', 'namdom', 'namphys', 'nammask', &
      &                                                 'namctl', 'namobridge']   ! known blocks

   namelist /namrun/ cn_exp, nn_it000, nn_itend, rn_dt, ln_rstart, cn_ocerst_in, nn_stock, ln_rst_end, nn_write, &
      &              nn_diag, nn_print
   namelist /namdom/ nn_nx, nn_ny, rn_dx, rn_dy, jpni, jpnj, ln_landdom
   namelist /namphys/ rn_tau0, rn_ahm, rn_bhm, ln_dynldf_lap, ln_dynldf_blp, rn_gprime, rn_rdrag, rn_trelax, rn_h0, rn_hthin, &
      &               rn_f0, rn_beta, rn_rho0, rn_aht, rn_shlat, rn_apvm, ln_dynvor_een, rn_tsouth, &
      &               rn_tnorth
   namelist /nammask/ cn_mask_file, cn_mask_var, rn_island
   namelist /namctl/ nn_ctl, rn_umax, rn_hmin, rn_tmax, rn_cflmax

contains

   !> Read all blocks from namelist_ref then namelist_cfg and validate them; cd_err is '' on success.
   subroutine nml_read(cd_err)
      character(len=*), intent(out) :: cd_err   !< first error found (file, block, variable), '' if none
      integer :: jf
      character(len=12) :: clf(2)
      cd_err = ''
      call obr_nml_defaults('gyre', jp_maxsend)
      clf = [character(len=12) :: cp_ref, cp_cfg]
      do jf = 1, 2
         call check_blocks(trim(clf(jf)), cd_err) ; if (cd_err /= '') return
         call read_one(trim(clf(jf)), 'namrun', cd_err)     ; if (cd_err /= '') return
         call read_one(trim(clf(jf)), 'namdom', cd_err)     ; if (cd_err /= '') return
         call read_one(trim(clf(jf)), 'namphys', cd_err)    ; if (cd_err /= '') return
         call read_one(trim(clf(jf)), 'nammask', cd_err)    ; if (cd_err /= '') return
         call read_one(trim(clf(jf)), 'namctl', cd_err)     ; if (cd_err /= '') return
         call obr_nml_read(trim(clf(jf)), cd_err, ld_newlist = jf == 2) ; if (cd_err /= '') return
      end do
      call validate(cd_err)
      rgfac = grav / rn_gprime
   end subroutine nml_read

   !> Stop at any block in a namelist file that the model does not know.
   subroutine check_blocks(cd_file, cd_err)
      character(len=*), intent(in)    :: cd_file   !< namelist file name
      character(len=*), intent(inout) :: cd_err    !< error message ('' if fine)
      integer :: inum, ios, ib, ie
      character(len=1024) :: cl
      logical :: llok
      open(newunit=inum, file=cd_file, status='old', action='read', iostat=ios)
      if (ios /= 0) then
         cd_err = 'cannot open '//cd_file//' in the run directory' ; return
      end if
      do
         read(inum, '(a)', iostat=ios) cl
         if (ios /= 0) exit
         cl = adjustl(cl)
         if (cl(1:1) /= '&') cycle
         ie = scan(cl(2:), ' /!,') ; if (ie == 0) ie = len_trim(cl)
         llok = .false.
         do ib = 1, jpblk
            if (obr_lower(cl(2:ie)) == trim(cp_blocks(ib))) llok = .true.
         end do
         if (.not. llok) then
            cd_err = cd_file//': unknown namelist block &'//trim(cl(2:ie))//' (known: &namrun &namdom &namphys '// &
               &     '&nammask &namctl &namobridge)'
            exit
         end if
      end do
      close(inum)
   end subroutine check_blocks

   !> Read one block from one file; a missing block keeps the current values.
   subroutine read_one(cd_file, cd_blk, cd_err)
      character(len=*), intent(in)    :: cd_file   !< namelist file name
      character(len=*), intent(in)    :: cd_blk    !< block name without '&'
      character(len=*), intent(inout) :: cd_err    !< error message ('' if fine)
      integer :: inum, ios, ik
      character(len=512) :: clmsg
      open(newunit=inum, file=cd_file, status='old', action='read', iostat=ios)
      if (ios /= 0) then
         cd_err = 'cannot open '//cd_file ; return
      end if
      clmsg = ''
      select case (cd_blk)
      case ('namrun')     ; read(inum, nml=namrun,     iostat=ios, iomsg=clmsg)
      case ('namdom')     ; read(inum, nml=namdom,     iostat=ios, iomsg=clmsg)
      case ('namphys')    ; read(inum, nml=namphys,    iostat=ios, iomsg=clmsg)
      case ('nammask')    ; read(inum, nml=nammask,    iostat=ios, iomsg=clmsg)
      case ('namctl')     ; read(inum, nml=namctl,     iostat=ios, iomsg=clmsg)
      end select
      close(inum)
      if (ios < 0 .and. obr_nml_has_group(cd_file, cd_blk)) then
         ! gfortran reaches the end of the file when a value does not parse: the block is there but unreadable
         cd_err = cd_file//': block &'//cd_blk//': bad entry: a value does not match its variable''s type, '// &
            &     'or the closing / is missing ('//trim(clmsg)//')'
      else if (ios > 0) then
         ik = index(clmsg, 'object name ')
         if (ik > 0) then
            cd_err = cd_file//': block &'//cd_blk//': unknown variable '''//trim(clmsg(ik+12:))//''' ('//trim(clmsg)//')'
         else
            cd_err = cd_file//': block &'//cd_blk//': bad entry ('//trim(clmsg)//')'
         end if
      end if
   end subroutine read_one

   !> Check values; the message names the switch.
   subroutine validate(cd_err)
      character(len=*), intent(inout) :: cd_err    !< error message ('' if fine)
      if (rn_dt <= 0._wp)        cd_err = '&namrun: rn_dt must be > 0'
      if (.not. ln_rstart .and. nn_itend < nn_it000 - 1) cd_err = '&namrun: nn_itend must be >= nn_it000 - 1'
      if (nn_stock < 0 .or. nn_write < 0 .or. nn_diag < 0 .or. nn_print < 0) &
         & cd_err = '&namrun: nn_stock, nn_write, nn_diag and nn_print must be >= 0'
      if (ln_rstart .and. len_trim(cn_ocerst_in) == 0) cd_err = '&namrun: ln_rstart needs cn_ocerst_in'
      if (nn_nx < 2 .or. nn_ny < 2)  cd_err = '&namdom: nn_nx and nn_ny must be >= 2'
      if (rn_dx <= 0._wp .or. rn_dy <= 0._wp) cd_err = '&namdom: rn_dx and rn_dy must be > 0'
      if (ln_landdom .and. (jpni <= 0 .or. jpnj <= 0)) cd_err = '&namdom: ln_landdom = .true. needs the layout: '// &
         &  'set jpni > 0 and jpnj > 0 (its land-only tiles are removed)'
      if (rn_gprime <= 0._wp)    cd_err = '&namphys: rn_gprime must be > 0'
      if (rn_h0 <= 0._wp)        cd_err = '&namphys: rn_h0 must be > 0'
      if (rn_hthin < 0._wp .or. rn_hthin >= rn_h0) cd_err = '&namphys: rn_hthin must be in [0, rn_h0) (0: no outcrop guard)'
      if (rn_ahm < 0._wp)        cd_err = '&namphys: rn_ahm must be >= 0'
      if (rn_bhm < 0._wp)        cd_err = '&namphys: rn_bhm must be >= 0'
      if (rn_aht < 0._wp)        cd_err = '&namphys: rn_aht must be >= 0'
      if (rn_rdrag < 0._wp)      cd_err = '&namphys: rn_rdrag must be >= 0'
      if (rn_trelax < 0._wp)     cd_err = '&namphys: rn_trelax must be >= 0 (0: no relaxation)'
      if (rn_rho0 <= 0._wp)      cd_err = '&namphys: rn_rho0 must be > 0'
      if (rn_apvm < 0._wp .or. rn_apvm > 1._wp) cd_err = '&namphys: rn_apvm must be in [0, 1]'
      if (rn_apvm > 0._wp .and. ln_dynvor_een) cd_err = '&namphys: rn_apvm > 0 goes with the energy-conserving '// &
         &  'vorticity flux only; set ln_dynvor_een = .false. or rn_apvm = 0'
      if (rn_shlat < 0._wp)      cd_err = '&namphys: rn_shlat must be >= 0 (0 free slip, 2 no slip)'
      if (nn_ctl < 1)            cd_err = '&namctl: nn_ctl must be >= 1'
      if (rn_cflmax <= 0._wp)    cd_err = '&namctl: rn_cflmax must be > 0 (1: the RK3 stability limit)'
      cerr = cd_err
      call obr_nml_check(field_code, 'a gyre field (ssh, u, v, temp or its alias sst, or mask)', keep_error)
      cd_err = cerr
   end subroutine validate

   !> Keep an invalid &namobridge switch as the error (the last one found wins, as for the other blocks).
   subroutine keep_error(cd_msg)
      character(len=*), intent(in) :: cd_msg    !< 'invalid <switch>: <why>'
      cerr = '&namobridge: '//cd_msg
   end subroutine keep_error

   !> The state index (jp_ssh...) of an entry of cn_obr_send, 0 if none: the host layer's field code.
   integer function field_code(cd_name)
      character(len=*), intent(in) :: cd_name   !< an entry of cn_obr_send
      field_code = nml_field_index(cd_name)
   end function field_code

   !> Index (jp_ssh...) of a field name, 0 if unknown; 'sst' is an alias of 'temp'.
   elemental integer function nml_field_index(cd_name)
      character(len=*), intent(in) :: cd_name   !< field name as written in cn_obr_send
      select case (trim(obr_lower(cd_name)))
      case ('ssh')          ; nml_field_index = jp_ssh
      case ('u')            ; nml_field_index = jp_u
      case ('v')            ; nml_field_index = jp_v
      case ('temp', 'sst')  ; nml_field_index = jp_tem
      case default          ; nml_field_index = 0
      end select
   end function nml_field_index

   !> Print the blocks in use to a unit (ocean.output style) .
   subroutine nml_print(kunit)
      integer, intent(in) :: kunit              !< Fortran unit to write to
      write(kunit, nml=namrun)
      write(kunit, nml=namdom)
      write(kunit, nml=namphys)
      write(kunit, nml=nammask)
      write(kunit, nml=namctl)
      call obr_nml_write(kunit)
   end subroutine nml_print

end module gyre_nml
