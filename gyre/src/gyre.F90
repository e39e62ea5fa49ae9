!> @file gyre.F90
!> @brief oceanbridge gyre: a reduced-gravity (1.5-layer) wind-driven double gyre on a beta plane, Arakawa C
!!        grid, 2-D MPI decomposition, NEMO-style namelists, netCDF output and restarts, and the &namobridge
!!        coupling hooks. Initialisation and finalisation stay outside the time loop.
program gyre
   use mpi
   use gyre_par
   use gyre_nml,  only: nml_read, nml_print
   use gyre_mpp,  only: mpp_init, mpp_decomp, ctl_stop, lwp, nsize, nremoved, mpp_barrier
   use gyre_dom,  only: dom_glob, dom_init, tmask, tmask_glo
   use gyre_sbc,  only: sbc_init, tstar
   use gyre_oce,  only: oce_alloc, xn, xmsk
   use gyre_ctl,  only: ctl_cfl, stp_ctl, rcfl_max, ncfl_max
   use gyre_cpl,  only: cpl_init, cpl_define, cpl_spinup, cpl_step, cpl_finalize, cpl_time
   use gyre_diag, only: dia_init, dia_step, dia_close
   use gyre_io,   only: io_init, io_write, io_close
   use gyre_rst,  only: rst_read
   use gyre_stp,  only: stp
   implicit none
   integer :: kt
   real(wp) :: zt0, zt1, zc0, zc1

   call gyre_init()
   call mpp_barrier()
   zt0 = MPI_Wtime()
   call cpu_time(zc0)
   do kt = nit000, nitend
      call stp(kt)
   end do
   call cpu_time(zc1)
   call mpp_barrier()
   zt1 = MPI_Wtime()
   call gyre_finalize(zt1 - zt0, zc1 - zc0)

contains

   !> Namelists, MPI (through the bridge or not), grid, initial state or restart, CFL, coupling, outputs.
   subroutine gyre_init()
      character(len=1024) :: clerr
      integer :: icomm, inum, jj
      call nml_read(clerr)
      call cpl_init(icomm, clerr)
      call mpp_init(icomm)
      call dom_glob()                           ! the global mask first: ln_landdom removes the land-only tiles
      call mpp_decomp(tmask_glo)
      if (lwp) then
         write(*, '(a)') ' oceanbridge gyre: reduced-gravity double gyre'
         if (nremoved > 0) then
            write(*, '(a,i0,a,i0,a,i0,a,i0,a)') ' mpp: ', nsize, ' rank(s) as ', jpni, ' x ', jpnj, ' tiles, ', &
               & nremoved, ' land-only tile(s) removed'
         else
            write(*, '(a,i0,a,i0,a,i0,a)') ' mpp: ', nsize, ' rank(s) as ', jpni, ' x ', jpnj, ' tiles'
         end if
         open(newunit=inum, file='output.namelist', status='replace', action='write')
         call nml_print(inum)
         close(inum)
      end if
      call dom_init()
      call sbc_init()
      call oce_alloc()
      nit000 = nn_it000
      nitend = nn_itend
      if (ln_rstart) then
         call rst_read(xn)
         xn = xn * xmsk
      else
         do jj = lbound(xn, 2), ubound(xn, 2)
            xn(:,jj,jp_tem) = tstar(jj) * tmask(:,jj)         ! at rest, temperature on its relaxation profile
         end do
      end if
      if (nitend < nit000 - 1) call ctl_stop('&namrun: nn_itend is before the restart step; nothing to do')
      call ctl_cfl(xn)
      call cpl_define()
      call cpl_spinup()
      call stp_ctl(nit000 - 1, xn, 'initial state')
      call io_init()
      call dia_init()
      if (cpl_step(nit000 - 1)) continue       ! the initial state; nothing is applied at nit000-1
      if (.not. ln_rstart) then
         call dia_step(nit000 - 1, xn, nn_print > 0)
         call io_write(nit000 - 1, xn)
      end if
      if (lwp) write(*, '(a,i0,a,i0)') ' time loop from step ', nit000, ' to ', nitend
   end subroutine gyre_init

   !> Close files, report the timing, leave the coupled job / MPI.
   subroutine gyre_finalize(ptime, pcpu)
      real(wp), intent(in) :: ptime             !< wall time of the time loop (s)
      real(wp), intent(in) :: pcpu              !< processor time of rank 0 in the time loop (s)
      integer :: instp
      call io_close()
      call dia_close()
      instp = nitend - nit000 + 1
      if (lwp) then
         write(*, '(a,i0,a,f0.3,a,f0.2,a)') ' gyre: time loop of ', instp, ' steps in ', ptime, ' s = ', &
            & real(instp, wp) / max(ptime, 1.e-9_wp), ' steps/s'
         write(*, '(a,f0.3,a)') ' gyre: processor time of rank 0 in the time loop: ', pcpu, ' s'
         write(*, '(a,f5.3,a,i0,a)') ' gyre: largest CFL number of the flow: ', rcfl_max, ' (step ', ncfl_max, &
            & '; checked every nn_ctl steps, stable below 1)'
         if (ln_obridge) write(*, '(a,f0.3,a,f0.2,a)') ' gyre: coupling calls in the time loop: ', cpl_time(), &
            & ' s on rank 0 (', 100._wp * cpl_time() / max(ptime, 1.e-9_wp), '% of the loop)'
         write(*, '(a)') ' gyre: normal end'
         flush(6)
      end if
      call cpl_finalize()
   end subroutine gyre_finalize

end program gyre
